"""What the stand-in's HTTP servers (IMDS, moto's werkzeug) do when handling a request fails.

socketserver's default prints a traceback to stderr, and a client that went away (a SIGSTOPped console
whose socket was reset, a timed-out SDK call) is not an error of the server: those are dropped quietly;
anything else is one log line (the traceback only at debug level), never a traceback on the terminal.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["handle_error"]

log = logging.getLogger(__name__)


def handle_error(request: Any, client_address: Any) -> None:
    """socketserver.BaseServer.handle_error replacement; call it inside the failed request's `except`."""
    exc = sys.exc_info()[1]
    if isinstance(exc, ConnectionError | TimeoutError):
        log.debug("client %s went away: %s", client_address, type(exc).__name__)
        return
    log.warning("request from %s failed: %s: %s", client_address, type(exc).__name__, exc)
    log.debug("request from %s failed", client_address, exc_info=True)
