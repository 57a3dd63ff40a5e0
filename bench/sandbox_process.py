"""The sandbox a bench measures against, in a process of its own (as AWS and RDS would be: in the bench's
process its moto server, front doors and workload would compete for the GIL and the CPU)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pgiam_sandbox.environment import exported, read_env_sh


class SandboxDidNotStart(SystemExit):
    """The sandbox exited before it said `ready` (uncaught: the bench exits, its stderr the message)."""


@contextlib.contextmanager
def sandbox_up(prefix: str, *args: str) -> Iterator[Path]:
    """`pgiam-tui sandbox up --dir WORK/sandbox ARGS` in a temporary WORK; yields the sandbox's directory once
    it is ready, with its environment exported (and a private HOME, so no CLI cache of another run is used).
    Afterwards the environment comes back, the sandbox is stopped by its pid and WORK is removed.
    SandboxDidNotStart when it exits before it is ready."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    box = work / "sandbox"
    cli = str(Path(sys.executable).with_name("pgiam-tui"))
    errors = work / "sandbox.stderr"  # a file, not a pipe: nobody reads a pipe while the bench runs
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [cli, "sandbox", "up", "--dir", str(box), *args], stdout=subprocess.PIPE, stderr=err, text=True
        )
    try:
        assert proc.stdout is not None
        if not any(line.strip() == "ready" for line in proc.stdout):
            raise SandboxDidNotStart(f"sandbox did not start: {errors.read_text()}")
        with exported(read_env_sh(box / "env.sh")):
            os.environ["HOME"] = str(work / "home")
            yield box
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
