"""`pgiam-tui password set NAME` / `password delete NAME`: the password of an auth = "password" cluster.

Passwords live in the OS keyring (service "pgiam-tui", username = the cluster name), never in
profiles.toml. `set` prompts twice without echo; `--stdin` reads one line instead (for scripts).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `password` command with `set` and `delete`."""
    parser = subparsers.add_parser(
        "password",
        help="store or delete a cluster's password in the OS keyring",
        description='Passwords of auth = "password" clusters are kept in the OS keyring, not in the config.',
    )
    actions = parser.add_subparsers(dest="password_action", metavar="ACTION")
    set_parser = actions.add_parser("set", help="store the password of cluster NAME (prompted, no echo)")
    set_parser.add_argument("name", metavar="NAME")
    set_parser.add_argument("--stdin", action="store_true", help="read the password from stdin (one line)")
    delete_parser = actions.add_parser("delete", help="remove the stored password of cluster NAME")
    delete_parser.add_argument("name", metavar="NAME")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when done; 1 on keyring failure or nothing to delete; 2 on usage/config errors."""
    from pgiam_tui.commands._cliutil import fail, load_cli_config
    from pgiam_tui.config import ConfigError
    from pgiam_tui.secrets import SecretStoreError, delete_password, set_password

    action = getattr(args, "password_action", None)
    if action not in ("set", "delete"):
        fail("usage: pgiam-tui password {set,delete} NAME")
        return 2
    try:
        cfg = load_cli_config(args.config).cluster(args.name)
    except ConfigError as exc:
        if action == "delete" and "no cluster named" in str(exc):
            cfg = None  # deleting a stale entry of a cluster removed from the config is fine
        else:
            fail(str(exc))
            return 2
    try:
        if action == "delete":
            if delete_password(args.name):
                print(f"deleted the password of {args.name!r} from the OS keyring")
                return 0
            fail(f"no password stored for {args.name!r}")
            return 1
        if cfg is None:  # only `delete` tolerates an unknown name
            return 2
        if cfg.auth != "password":
            fail(
                f"cluster {cfg.name!r} uses auth = {cfg.auth!r}; a stored password is only used with "
                'auth = "password"',
                f'set auth = "password" in its [[clusters]] entry (line {cfg.source_line}) first',
            )
            return 2
        password = _read_password(args.stdin)
        if password is None:
            return 2
        set_password(cfg.name, password)
    except SecretStoreError as exc:
        fail(str(exc))
        return 1
    print(f"stored the password of {cfg.name!r} in the OS keyring")
    return 0


def _read_password(from_stdin: bool) -> str | None:
    import getpass

    from pgiam_tui.commands._cliutil import fail

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            fail("no terminal to prompt on", "pipe the password with --stdin")
            return None
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Again: ")
        except EOFError:
            fail("no password entered")
            return None
        if password != again:
            fail("the two passwords differ; nothing stored")
            return None
    if not password:
        fail("empty password; nothing stored")
        return None
    return password
