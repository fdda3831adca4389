"""What every `changegate` command shares: exit codes, usage errors, help formatting, and
reading settings, files and `--since` values."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
from collections.abc import Iterator
from pathlib import Path

from bot.durations import parse_duration
from bot.settings import Settings

EXIT_PASS, EXIT_FINDINGS, EXIT_ERROR, EXIT_CRASH = 0, 1, 2, 3

Subcommands = argparse._SubParsersAction  # what `add_subparsers` returns


class UsageError(Exception):
    """A problem with what the user asked for; printed as `changegate: …`, exit 2."""


class HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default in its help, unless there is none or the help says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, argparse.SUPPRESS)
            and "default" not in text
        ):
            text = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return text


def subcommands(
    parser: argparse.ArgumentParser, dest: str, metavar: str
) -> Subcommands[argparse.ArgumentParser]:
    """A required group of subcommands whose help shows defaults."""
    group = parser.add_subparsers(dest=dest, required=True, metavar=metavar)
    group._parser_class = functools.partial(  # type: ignore[assignment]
        argparse.ArgumentParser, formatter_class=HelpFormatter
    )
    return group


def settings() -> Settings:
    """The server's settings from the environment; bad ones are a usage error."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        raise UsageError(f"bad settings: {exc}") from None


@contextlib.contextmanager
def reaching(url: str) -> Iterator[None]:
    """A driver error while connecting becomes the one-line `DatabaseUnavailable`."""
    import sqlalchemy.exc

    from bot.store import unreachable

    try:
        yield
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        raise unreachable(url, exc) from None


def since(value: str | None) -> dt.datetime | None:
    """`--since`: a duration back from now (7d, 12h), an ISO date, or None for `all`."""
    if not value or value == "all":
        return None
    try:
        return dt.datetime.now(dt.UTC) - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since {value!r}: give a duration (7d, 12h) or an ISO date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def existing(path: str) -> Path:
    """`path` if it names a file; a usage error saying what it is otherwise."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{path}: is a directory, not a file")
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    return p


def read_text(path: str) -> str:
    try:
        return existing(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from None
