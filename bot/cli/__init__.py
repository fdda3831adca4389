"""`changegate …`: one module per command group (check and scan, policy, the server side,
audit, slack); this module builds the parser and runs a command.

Exit codes (SPEC.md, README "Exit codes"): 0 pass; 1 fail or approval_required (for
`audit verify`: the chain is broken); 2 a usage, policy, configuration or environment error
(a missing or unreachable database, a reversed range), one line naming the cause and the
remedy; 3 an unexpected error, one line (the traceback with CHANGEGATE_DEBUG=1).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from bot.cli import audit, check, policy, server, slack
from bot.cli.common import EXIT_CRASH, EXIT_ERROR, HelpFormatter, UsageError, subcommands
from bot.policy.schema import PolicyError

#: Each adds its subcommands, with `run` (the handler) as their default.
COMMAND_GROUPS = (check, policy, server, audit, slack)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("changegate")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="changegate",
        description="Change governance: check changes against policy, gate merges and deploys.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"changegate {_version()}")
    sub = subcommands(parser, "command", "COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return EXIT_ERROR
    except UsageError as exc:
        print(f"changegate: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not 121
        environment = _environment_error(exc)
        if environment is not None:
            print(f"changegate: {environment}", file=sys.stderr)
            return EXIT_ERROR
        if os.environ.get("CHANGEGATE_DEBUG") == "1":
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        print(
            f"changegate: unexpected error: {type(exc).__name__}: {first} "
            "(CHANGEGATE_DEBUG=1 prints the traceback; please report it)",
            file=sys.stderr,
        )
        return EXIT_CRASH


def _environment_error(exc: Exception) -> str | None:
    """The one-line message of a configuration or environment error (exit 2), else None.
    Looks only at modules already imported: `check` and `scan` never load the database."""
    store = sys.modules.get("bot.store")
    if store is not None and isinstance(exc, store.DatabaseUnavailable | store.SchemaError):
        return str(exc)
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return (
            f"database error ({first}): check CHANGEGATE_DATABASE_URL and that the "
            "database server runs"
        )
    return None
