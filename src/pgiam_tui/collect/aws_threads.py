"""Worker threads for the AWS reads (discovery, events, IAM mapping, caller identity).

They get a pool of their own so that a slow or dead AWS endpoint there (boto3 waits out its connect and read
timeouts, with retries) can never occupy every thread of the loop's default executor, which the activity
path needs for discovery, sessions and tokens: activity must not wait behind the IAM pane.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["run_side_thread"]

P = ParamSpec("P")
R = TypeVar("R")

SIDE_THREADS = 16  # discovery, events, IAM, identity of a few clusters at once; more just queue

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=SIDE_THREADS, thread_name_prefix="pgiam-side")
        return _pool


async def run_side_thread(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run the blocking FUNC in the side pool (like asyncio.to_thread, context variables included)."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await loop.run_in_executor(_executor(), call)
