"""`changegate audit`: verify the hash chain, export rows as evidence."""

from __future__ import annotations

import argparse
import sys

from bot.cli.common import EXIT_FINDINGS, EXIT_PASS, Subcommands, settings, since, subcommands


def register(sub: Subcommands[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the append-only audit log")
    audit.set_defaults(run=cmd_audit)
    actions = subcommands(audit, "audit_command", "ACTION")
    actions.add_parser("verify", help="check the hash chain: exit 1 if a row was edited or deleted")
    export = actions.add_parser("export", help="print audit rows as evidence")
    export.add_argument(
        "--since",
        default="30d",
        help="a duration (7d, 12h), an ISO date (2026-01-31), or `all`",
    )
    export.add_argument("--format", choices=["csv", "json"], default="json", help="output format")


def cmd_audit(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from bot import audit
    from bot.store import open_existing

    engine = open_existing(settings().database_url)
    with Session(engine) as session:
        if args.audit_command == "verify":
            problems = audit.verify(session)
            seq, digest = audit.head(session)
            for problem in problems:
                print(f"audit: {problem}", file=sys.stderr)
            if problems:
                return EXIT_FINDINGS
            print(f"audit log intact: {seq} rows, head {digest[:16]}")
            return EXIT_PASS
        sys.stdout.write(audit.export(session, since(args.since), args.format))
    return EXIT_PASS
