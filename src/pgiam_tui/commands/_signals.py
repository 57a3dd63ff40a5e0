"""SIGTERM, SIGHUP and SIGINT become an orderly exit of the console (and of the demo's sandbox).

Without this, Python's default action ends the process at once: the terminal stays in the alternate screen
with mouse tracking on, and the demo's PostgreSQL servers (in sessions of their own, so a closed terminal
does not reach them) live on, re-parented to PID 1. With it:

- outside the app (the demo starting or stopping its sandbox) a signal is only noted; the caller checks
  `received` at its next step, so nothing is interrupted half-way (a server started but not yet recorded
  would be lost to the cleanup);
- while the app runs, the signal asks the app to exit through its usual path (monitor stopped, terminal
  restored). The handler is registered with the event loop, whose wakeup fd wakes it even when the kernel
  hands the signal to another thread.

A closed terminal (SIGHUP) cannot be written to any more: `say` swallows those errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from textual.app import App

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def exit_code(signum: int) -> int:
    """The shell's convention for "ended by signal N": 128 + N."""
    return 128 + signum


def say(message: str) -> None:
    """One line on stderr, if there is still somewhere to write it (not after the terminal closed)."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)


class ExitSignals:
    """Notes the first exit signal; while an app runs, asks it to exit. A context manager (main thread)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._on_receive: Callable[[int], None] | None = None

    def __enter__(self) -> ExitSignals:
        self.install()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def install(self) -> None:
        """(Re)install the plain handlers: asyncio restores the defaults when its loop closes."""
        for signum in EXIT_SIGNALS:
            previous = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, previous)

    @property
    def name(self) -> str:
        """The received signal's name (e.g. SIGTERM), or an empty string."""
        return signal.Signals(self.received).name if self.received is not None else ""

    def _handle(self, signum: int, frame: FrameType | None = None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if first and self._on_receive is not None:
            self._on_receive(signum)

    def run_app(self, app: App[Any]) -> Any:
        """Run APP (its own event loop) with the exit signals asking it to exit; its return value."""

        async def main() -> Any:
            loop = asyncio.get_running_loop()

            def ask_exit(signum: int) -> None:
                # The app's own way out (on_unmount stops the monitor); the terminal is restored by Textual.
                app.exit(exit_code(signum))

            self._on_receive = ask_exit
            for signum in EXIT_SIGNALS:
                loop.add_signal_handler(signum, self._handle, signum)
            try:
                if self.received is not None:  # arrived before the loop ran: do not even start
                    return exit_code(self.received)
                return await app.run_async()
            finally:
                self._on_receive = None

        # Textual's driver writes the screen to sys.__stderr__ from a writer thread that dies on the first
        # failed write (EIO once the terminal is closed); the writes queued after that block the app for good,
        # so a closed terminal would hang the exit (and the demo's cleanup) instead of ending it.
        real_stderr = sys.__stderr__
        if real_stderr is not None:
            sys.__stderr__ = HangupTolerantStream(real_stderr)  # type: ignore[assignment,misc]
        try:
            return asyncio.run(main())
        finally:
            sys.__stderr__ = real_stderr  # type: ignore[misc]
            # Closing the loop put the default actions back (death without cleanup): ours again, at once.
            self.install()


class HangupTolerantStream:
    """A text stream whose writes and flushes are dropped, not raised, once the terminal behind it is gone.

    A closed terminal window hangs up the tty: every write then fails with EIO. There is nobody left to
    read the screen, so dropping the output is the right thing; everything else is the wrapped stream's.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        """Write TEXT, or drop it once the terminal is gone."""
        if not self.gone:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):
                self.gone = True
        return len(text)

    def flush(self) -> None:
        """Flush, unless the terminal is gone."""
        if not self.gone:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.gone = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def leave_terminal_program(code: int) -> int:
    """End a terminal program whose own cleanup is done, without the interpreter's teardown.

    By then the monitor is stopped, the terminal restored and (for the demo) every server stopped and its
    files removed; what is left is freeing a few hundred thousand objects, which took 5-8 s on a busy
    2-core machine after the demo. Only when stdout is a terminal: called in-process (tests) it returns CODE.
    """
    if not sys.stdout.isatty():
        return code
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
