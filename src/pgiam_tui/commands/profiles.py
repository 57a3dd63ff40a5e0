"""`pgiam-tui profiles [--json] [--resolve]`: the AWS profiles botocore sees, classified, with role chains.

--resolve asks STS (get-caller-identity) for every profile at once, in threads; each profile's error is
reported with it and never stops the others.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from pgiam_tui.textsafe import to_json

if TYPE_CHECKING:
    from pgiam_tui.aws.profiles import ProfileInfo, Resolution


def register(subparsers: Any) -> None:
    """Add the `profiles` command."""
    parser = subparsers.add_parser(
        "profiles",
        help="list AWS profiles and what they resolve to",
        description="List the AWS profiles (AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE honoured), "
        "each with its kind and role chain; --resolve shows the identity each one resolves to.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--resolve", action="store_true", help="sts get-caller-identity for every profile")
    parser.add_argument("names", nargs="*", metavar="PROFILE", help="only these profiles")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0; 1 when --resolve failed for any profile; 2 for an unreadable AWS config or unknown name."""
    import botocore.exceptions

    from pgiam_tui.aws.profiles import list_profiles, resolve_identities
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.commands._cliutil import fail, terminal_mfa_prompt

    try:
        profiles = list_profiles()
    except botocore.exceptions.BotoCoreError as exc:
        fail(f"cannot read the AWS config: {exc}")
        return 2
    if args.names:
        known = {p.name for p in profiles}
        missing = [n for n in args.names if n not in known]
        if missing:
            from pgiam_tui.aws.errors import did_you_mean

            guesses = "".join(did_you_mean(n, sorted(known)) for n in missing)
            fail(
                f"unknown AWS profile(s): {', '.join(missing)}{guesses} "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )
            return 2
        profiles = [p for p in profiles if p.name in args.names]

    resolutions: dict[str, Resolution] = {}
    if args.resolve:
        factory = SessionFactory(terminal_mfa_prompt)
        for r in resolve_identities([p.name for p in profiles], factory.identity):
            resolutions[r.profile] = r

    if args.json:
        print(to_json({"profiles": [_json_row(p, resolutions.get(p.name)) for p in profiles]}, indent=2))
    else:
        _print_table(profiles, resolutions if args.resolve else None)
    failed = any(r.error is not None for r in resolutions.values())
    return 1 if failed else 0


def _json_row(p: ProfileInfo, r: Resolution | None) -> dict[str, Any]:
    row = p.to_json()
    row["identity_arn"] = r.arn if r else None
    row["error"] = (
        {"kind": r.error.kind, "message": r.error.message, "hint": r.error.hint} if r and r.error else None
    )
    return row


def _print_table(profiles: list[ProfileInfo], resolutions: dict[str, Resolution] | None) -> None:
    from pgiam_tui.textsafe import visible

    if not profiles:
        print("no AWS profiles found (AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, ~/.aws/config)")
        return
    header = ["PROFILE", "KIND", "REGION", "CHAIN"]
    if resolutions is not None:
        header.append("IDENTITY")
    rows: list[list[str]] = []
    for p in profiles:
        chain = p.chain_text() if len(p.chain) > 1 or p.chain_source else ""
        if p.problem:
            chain = f"{chain} [{p.problem}]".strip()
        row = [p.name, p.kind_label, p.region or "-", chain or "-"]
        if resolutions is not None:
            res = resolutions.get(p.name)
            if res is None:
                row.append("-")
            elif res.error is not None:
                hint = f" (hint: {res.error.hint})" if res.error.hint else ""
                row.append(f"ERROR {res.error.kind}: {res.error.message}{hint}")
            else:
                row.append(res.arn or "-")
        rows.append([visible(c) for c in row])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for line in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
