"""`pgiam-tui discover [--profile P ...] [--region R ...] [--write FILE]`: ready [[clusters]] entries.

Scans every profile x region pair at once (threads), keeps PostgreSQL clusters and instances with IAM
database authentication enabled, and prints TOML entries, or appends them to FILE without duplicating
names (or clusters) already there. An error in one profile/region is reported and the others go on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgiam_tui.textsafe import to_json

if TYPE_CHECKING:
    from pgiam_tui.aws.inventory import DiscoveredDatabase
    from pgiam_tui.config import Config


# Where the entries point for the RDS CA bundle (verify-full needs it; system trust stores lack it).
DEFAULT_CA_BUNDLE = "~/.postgresql/rds-global-bundle.pem"


def register(subparsers: Any) -> None:
    """Add the `discover` command."""
    parser = subparsers.add_parser(
        "discover",
        help="find clusters with IAM auth and print config entries",
        description="Find the Aurora PostgreSQL clusters and RDS for PostgreSQL instances with IAM database "
        "authentication that each profile can see, and print ready [[clusters]] entries.",
    )
    parser.add_argument(
        "--profile", action="append", default=[], metavar="P", help="AWS profile (repeatable; default chain)"
    )
    parser.add_argument(
        "--all-profiles",
        action="store_true",
        help="scan every AWS profile that has credentials (a database seen by several keeps the first)",
    )
    parser.add_argument(
        "--region", action="append", default=[], metavar="R", help="region (repeatable; default: profile's)"
    )
    parser.add_argument("--write", metavar="FILE", help="append the new entries to this config file")
    parser.add_argument(
        "--database",
        metavar="DB",
        help="database to put in the entries (default: the one AWS reports, else postgres)",
    )
    parser.add_argument(
        "--sslrootcert",
        metavar="FILE",
        default=DEFAULT_CA_BUNDLE,
        help=f"RDS CA bundle to put in the entries (default {DEFAULT_CA_BUNDLE})",
    )
    parser.add_argument("--user", metavar="USER", help="database user to put in the entries")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every scan worked, 1 when some profile/region failed, 2 on a bad --write file."""
    from pgiam_tui.commands._cliutil import fail
    from pgiam_tui.config import ConfigError, load_config, parse_config
    from pgiam_tui.textsafe import visible

    existing: Config | None = None
    target = Path(args.write).expanduser() if args.write else None
    if target is not None and target.exists():
        try:
            existing = load_config(target)
        except ConfigError as exc:
            fail(f"not appending to an invalid config: {exc}")
            return 2

    profiles: list[str | None] = list(args.profile)
    if args.all_profiles:
        import botocore.exceptions

        from pgiam_tui.aws.profiles import list_profiles

        try:
            profiles += [p.name for p in list_profiles() if p.usable and p.name not in profiles]
        except botocore.exceptions.BotoCoreError as exc:
            fail(f"cannot read the AWS config: {exc}")
            return 2
    found, errors = scan(profiles or [None], args.region)
    for message in errors:
        fail(message)
    enabled = [d for d in found if d.iam_auth_enabled]
    skipped = [d for d in found if not d.iam_auth_enabled]
    if skipped:
        names = ", ".join(f"{d.identifier} ({d.region})" for d in skipped)
        print(f"# skipped, IAM database authentication off: {visible(names)}", file=sys.stderr)

    entries = build_entries(
        enabled, existing, database=args.database, user=args.user, sslrootcert=args.sslrootcert
    )
    text = "".join(entries)
    if target is None:
        if text:
            sys.stdout.write(text.lstrip("\n"))
        else:
            print("# nothing found with IAM database authentication enabled", file=sys.stderr)
        return 1 if errors else 0

    old = target.read_text(encoding="utf-8") if target.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    new = old + text
    try:
        parse_config(new, target)  # never write a file the console would refuse
    except ConfigError as exc:
        fail(f"generated entries do not validate, {target} left unchanged: {exc}")
        return 2
    if text:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(new, encoding="utf-8")
    kept = len(enabled) - len(entries)
    print(f"added {len(entries)} entries to {target}" + (f" ({kept} already present)" if kept else ""))
    return 1 if errors else 0


def scan(
    profiles: Sequence[str | None], regions: Sequence[str]
) -> tuple[list[DiscoveredDatabase], list[str]]:
    """Scan every profile x region concurrently; (databases found, one error line per failed pair)."""
    from concurrent.futures import ThreadPoolExecutor

    from pgiam_tui.aws.errors import AwsCredentialError, DiscoveryError, classify_aws_error
    from pgiam_tui.aws.inventory import scan_region
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.commands._cliutil import terminal_mfa_prompt

    factory = SessionFactory(terminal_mfa_prompt)
    errors: list[str] = []
    pairs: list[tuple[str | None, str]] = []
    for profile in dict.fromkeys(profiles):
        try:
            session = factory.session(profile)
        except AwsCredentialError as exc:
            errors.append(_line(exc.message, exc.hint))
            continue
        profile_regions = list(dict.fromkeys(regions)) or (
            [session.region_name] if session.region_name else []
        )
        if not profile_regions:
            errors.append(f"profile {profile or 'default'}: no region; pass --region R")
            continue
        pairs.extend((profile, r) for r in profile_regions)

    def one(pair: tuple[str | None, str]) -> tuple[list[DiscoveredDatabase], str | None]:
        profile, region = pair
        try:
            return scan_region(factory.session(profile), region, profile), None
        except (AwsCredentialError, DiscoveryError) as exc:
            return [], _line(f"{profile or 'default'} / {region}: {exc.message}", exc.hint)
        except Exception as exc:  # one broken pair must not hide the others' results
            err = classify_aws_error(exc, profile)
            return [], _line(f"{profile or 'default'} / {region}: {err.message}", err.hint)

    found: list[DiscoveredDatabase] = []
    seen: set[tuple[str | None, str, str, str]] = set()
    if pairs:
        with ThreadPoolExecutor(max_workers=min(8, len(pairs))) as pool:
            for databases, error in pool.map(one, pairs):
                if error:
                    errors.append(error)
                for d in databases:
                    key = (d.account_id, d.region, d.kind, d.identifier)
                    if key not in seen:  # the same database seen through two profiles
                        seen.add(key)
                        found.append(d)
    return found, errors


def build_entries(
    databases: Sequence[DiscoveredDatabase],
    existing: Config | None,
    *,
    database: str | None = None,
    user: str | None = None,
    sslrootcert: str = DEFAULT_CA_BUNDLE,
) -> list[str]:
    """One TOML [[clusters]] block per database not already configured (by name or by id+region)."""
    taken = {c.name for c in existing.clusters} if existing else set()
    configured = set()
    if existing:
        for c in existing.clusters:
            configured.add((c.cluster_id or c.instance_id, c.region))
    ids = [d.identifier for d in databases]
    out: list[str] = []
    for d in databases:
        if (d.identifier, d.region) in configured:
            continue
        name = d.identifier
        if ids.count(d.identifier) > 1 or name in taken:
            name = f"{d.identifier}-{d.region}"
        if name in taken and d.account_id:
            name = f"{d.identifier}-{d.account_id}-{d.region}"
        if name in taken:
            continue
        taken.add(name)
        out.append(_entry(d, name, database, user, sslrootcert))
    return out


def _entry(d: DiscoveredDatabase, name: str, database: str | None, user: str | None, sslrootcert: str) -> str:
    from pgiam_tui.aws.endpoints import RDS_CA_BUNDLE_URL

    lines = [
        "",
        f"# {d.engine} in account {d.account_id or '?'}, {d.region}: {d.endpoint or '?'}:{d.port or '?'}, "
        f"resource id {d.resource_id or '?'}",
        "[[clusters]]",
        f"name = {_toml(name)}",
    ]
    if d.profile:
        lines.append(f"profile = {_toml(d.profile)}")
    lines.append(f"region = {_toml(d.region)}")
    key = "cluster_id" if d.kind == "aurora" else "instance_id"
    lines.append(f"{key} = {_toml(d.identifier)}")
    lines.append(f"database = {_toml(database or d.database_name or 'postgres')}")
    lines.append(f"# the RDS CA bundle, from {RDS_CA_BUNDLE_URL}")
    lines.append(f"sslrootcert = {_toml(sslrootcert)}")
    if user:
        lines.append(f"user = {_toml(user)}")
    return "\n".join(lines) + "\n"


def _toml(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, DEL included)
    return to_json(value)


def _line(message: str, hint: str | None) -> str:
    return f"{message} (hint: {hint})" if hint else message
