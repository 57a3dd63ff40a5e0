"""`pgiam-tui sandbox up --dir DIR ...`: run the local AWS + RDS stand-in until SIGINT/SIGTERM.

`sandbox restart|pids --dir DIR INSTANCE` talk to a running one through its control socket (control.py).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pgiam_tui.commands._cliutil import missing_sandbox


def register(subparsers: Any) -> None:
    """Add the `sandbox` command (with its `up` action)."""
    parser = subparsers.add_parser(
        "sandbox",
        help="run the local AWS + RDS sandbox",
        description="Local stand-in for AWS (moto, IMDS) and RDS PostgreSQL with IAM authentication.",
    )
    actions = parser.add_subparsers(dest="sandbox_action", metavar="ACTION")
    up = actions.add_parser("up", help="start the sandbox, print 'ready', run until SIGINT/SIGTERM")
    up.add_argument("--dir", required=True, metavar="DIR", help="directory for env.sh, profiles.toml, data")
    up.add_argument(
        "--clusters", type=_non_negative, default=3, metavar="N", help="Aurora clusters, up to 50 (default 3)"
    )
    up.add_argument(
        "--sessions",
        type=_non_negative,
        default=0,
        metavar="N",
        help="idle client sessions held open per PostgreSQL server (max_connections raised to fit)",
    )
    up.add_argument(
        "--servers",
        type=_positive,
        default=8,
        metavar="N",
        help="PostgreSQL servers at most; beyond that, instances share them (default 8)",
    )
    up.add_argument("--no-workload", action="store_true", help="no background sessions")
    up.add_argument(
        "--latency-ms", type=_non_negative_float, default=0.0, metavar="N", help="added per message"
    )
    up.add_argument(
        "--clock-skew-seconds",
        type=float,
        default=0.0,
        metavar="N",
        help="front door clock offset (token expiry)",
    )
    up.add_argument(
        "--aws-port", type=_port, default=0, metavar="PORT", help="fake AWS port (default: any free)"
    )
    up.add_argument(
        "--imds-port", type=_port, default=0, metavar="PORT", help="IMDS port (default: any free)"
    )
    up.add_argument("--pg-bindir", default=None, metavar="DIR", help="PostgreSQL binaries (else found)")
    for action, text in (
        ("restart", "start an instance's PostgreSQL again (also after it was killed) in a running sandbox"),
        ("pids", "print the postmaster and other pids of an instance of a running sandbox (JSON)"),
    ):
        sub = actions.add_parser(action, help=text, description=text)
        sub.add_argument("--dir", required=True, metavar="DIR", help="the running sandbox's directory")
        sub.add_argument("instance", metavar="INSTANCE", help="DB instance id, e.g. pgdemo-1-writer")
    requests = actions.add_parser(
        "aws-requests",
        help="AWS requests so far per account, region and service (JSON), the sandbox's own excluded",
    )
    requests.add_argument("--dir", required=True, metavar="DIR", help="the running sandbox's directory")
    parser.set_defaults(func=run)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def _port(text: str) -> int:
    value = _non_negative(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Start the sandbox, print `ready`, wait for SIGINT/SIGTERM, stop everything. Exit 2 on bad input."""
    action = getattr(args, "sandbox_action", None)
    if action in ("restart", "pids", "aws-requests"):
        return _control(action, args)
    if action != "up":
        print("pgiam-tui sandbox: choose an action: up, restart, pids, aws-requests", file=sys.stderr)
        return 2
    import signal
    import threading
    from pathlib import Path

    try:
        from pgiam_sandbox import Sandbox, SandboxError
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("pgiam_sandbox"):
            raise
        print(missing_sandbox("sandbox"), file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    # Handlers first: a signal during start-up must still lead to a clean stop, not a half-started sandbox.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        sandbox = Sandbox(
            Path(args.dir),
            clusters=args.clusters,
            workload=not args.no_workload,
            latency_ms=args.latency_ms,
            clock_skew_seconds=args.clock_skew_seconds,
            pg_bindir=args.pg_bindir,
            aws_port=args.aws_port,
            imds_port=args.imds_port,
            sessions=args.sessions,
            max_servers=args.servers,
        )
    except SandboxError as exc:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(f"pgiam-tui sandbox: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            sandbox.start()
        except SandboxError as exc:
            print(f"pgiam-tui sandbox: {exc}", file=sys.stderr)
            return 2
        if not stop.is_set():
            print(
                f"sandbox up: {len(sandbox.clusters)} clusters; source {Path(args.dir) / 'env.sh'}",
                flush=True,
            )
            print("ready", flush=True)
            # Poll: a process-directed SIGTERM may be delivered to any of the sandbox's threads, and then
            # nothing interrupts the main thread's wait; Python runs the handler only once the main thread
            # wakes up. A long wait here made SIGTERM take up to that long.
            while not stop.wait(0.25):
                pass
        return 0
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _control(action: str, args: argparse.Namespace) -> int:
    """Ask the sandbox running in --dir (its control socket, named in sandbox.json) to restart / name pids."""
    import json
    from pathlib import Path

    try:
        from pgiam_sandbox.control import request
        from pgiam_sandbox.errors import SandboxError
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("pgiam_sandbox"):
            raise
        print(missing_sandbox("sandbox"), file=sys.stderr)
        return 2
    state = Path(args.dir) / "sandbox.json"
    try:
        socket_path = json.loads(state.read_text(encoding="utf-8")).get("control_socket")
    except (OSError, ValueError, AttributeError):
        socket_path = None
    if not isinstance(socket_path, str) or not socket_path:
        print(
            f"pgiam-tui sandbox {action}: no running sandbox in {args.dir} (no {state.name})", file=sys.stderr
        )
        return 2
    try:
        reply = request(Path(socket_path), action, getattr(args, "instance", ""))
    except SandboxError as exc:
        print(f"pgiam-tui sandbox {action}: {exc}", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"pgiam-tui sandbox {action}: {reply.get('error', 'failed')}", file=sys.stderr)
        return 1
    if action == "pids":
        print(json.dumps({"postmaster": reply.get("postmaster"), "children": reply.get("children", [])}))
    elif action == "aws-requests":
        print(json.dumps(reply.get("requests", [])))
    else:
        print(f"restarted {args.instance}")
    return 0
