"""A closed terminal must not hang the console's exit (found by CI: the demo never stopped after kill-pane).

Textual writes the screen from a writer thread that dies on its first failed write; once the terminal
window is closed every write to the tty fails with EIO, the thread is gone, and the next queued writes
block the app's exit forever (seen with py-spy: `WriterThread.stop` waiting in `Queue.put`). The console
hands Textual a stream that drops output once the terminal is gone. These tests hang up a real pty.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading

from pgiam_tui.commands._signals import HangupTolerantStream


def _hung_up_tty() -> io.TextIOWrapper:
    """A text stream on a pty slave whose master was closed: the kernel hangs the slave up."""
    master, slave = os.openpty()
    stream = open(slave, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    os.close(master)
    return stream


def test_a_hung_up_tty_fails_writes_so_the_wrapper_is_needed() -> None:
    stream = _hung_up_tty()
    try:
        stream.write("\x1b[?1049l")
        try:
            stream.flush()
        except OSError:
            return
        raise AssertionError(
            "writing to a hung-up pty succeeded: the premise of HangupTolerantStream is gone"
        )
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def test_writes_to_a_hung_up_tty_are_dropped_not_raised() -> None:
    raw = _hung_up_tty()
    stream = HangupTolerantStream(raw)
    assert stream.write("screen") == len("screen")
    stream.flush()
    assert stream.gone
    assert stream.write("more") == len("more")  # still no error, now without touching the tty
    stream.flush()
    assert stream.fileno() == raw.fileno()  # everything else is the wrapped stream's


def test_a_writer_thread_on_a_hung_up_tty_keeps_draining_its_queue() -> None:
    """What Textual's writer thread does (write, flush when the queue is empty), on a bounded queue."""
    import queue

    stream = HangupTolerantStream(_hung_up_tty())
    pending: queue.Queue[str | None] = queue.Queue(maxsize=30)

    def writer() -> None:
        while (text := pending.get()) is not None:
            stream.write(text)
            if pending.qsize() == 0:
                stream.flush()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    for _ in range(200):  # far more than the queue holds: a dead writer would block this loop for good
        pending.put("frame", timeout=60)
    pending.put(None, timeout=60)
    thread.join(timeout=60)
    assert not thread.is_alive()


def test_a_live_stream_is_written_through() -> None:
    buffer = io.StringIO()
    stream = HangupTolerantStream(buffer)
    stream.write("a")
    stream.flush()
    assert buffer.getvalue() == "a"
    assert not stream.gone
