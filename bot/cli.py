"""`changegate …`: check, scan, policy, serve, worker, db, inbox.

Exit codes (SPEC.md, README "Exit codes"): 0 pass; 1 fail or approval_required (for
`audit verify`: the chain is broken); 2 a usage, policy, configuration or environment error
(a missing or unreachable database, a reversed range), one line naming the cause and the
remedy; 3 an unexpected error, one line (the traceback with CHANGEGATE_DEBUG=1).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import gc
import json
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from bot.change import Decision, FileView, Verdict
from bot.policy.schema import Policy, PolicyError, load_policy_file, load_policy_text

EXIT_PASS, EXIT_FINDINGS, EXIT_ERROR, EXIT_CRASH = 0, 1, 2, 3


class UsageError(Exception):
    """A problem with what the user asked for; printed as `changegate: …`, exit 2."""


class _HelpFormatter(argparse.HelpFormatter):
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
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"changegate {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _subparser_formatting(sub)
    formats = ["text", "json", "sarif"]

    check = sub.add_parser("check", help="check a git range against the policy")
    check.add_argument("--repo", default=".", help="git repository (default: .)")
    check.add_argument("--base", required=True, help="base revision")
    check.add_argument("--head", required=True, help="head revision")
    check.add_argument(
        "--policy", help="policy file (default: .changegate.yml at base, else the bundled policy)"
    )
    desc = check.add_mutually_exclusive_group()
    desc.add_argument("--description", help="the change's description (PR/MR body)")
    desc.add_argument("--description-file", help="read the description from a file")
    check.add_argument("--format", choices=formats, default="text", help="output format")

    scan = sub.add_parser("scan", help="check files' contents (no change rules)")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument(
        "--policy", help="policy file (default: ./.changegate.yml, else the bundled policy)"
    )
    scan.add_argument("--format", choices=formats, default="text", help="output format")

    policy = sub.add_parser(
        "policy", help="validate a policy, print its JSON Schema, or simulate a candidate"
    )
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    _subparser_formatting(policy_sub)
    validate = policy_sub.add_parser("validate", help="validate a policy file")
    validate.add_argument("file")
    policy_sub.add_parser("schema", help="print the policy file's JSON Schema")
    test = policy_sub.add_parser(
        "test", help="run a policy's test cases (exit 1 with a diff on any mismatch)"
    )
    test.add_argument("tests_file", metavar="FILE")
    simulate = policy_sub.add_parser(
        "simulate", help="replay recent changes against a candidate policy (server database)"
    )
    simulate.add_argument("candidate", help="the candidate policy file")
    simulate.add_argument("--since", default="7d", help="a duration (7d) or an ISO date")

    serve = sub.add_parser("serve", help="run the webhook server (and in-process workers)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")

    sub.add_parser("worker", help="run workers without the HTTP server")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    _subparser_formatting(db_sub)
    db_sub.add_parser("upgrade", help="migrate the database to the current schema")

    audit = sub.add_parser("audit", help="the append-only audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    _subparser_formatting(audit_sub)
    audit_sub.add_parser(
        "verify", help="check the hash chain: exit 1 if a row was edited or deleted"
    )
    export = audit_sub.add_parser("export", help="print audit rows as evidence")
    export.add_argument(
        "--since",
        default="30d",
        help="a duration (7d, 12h), an ISO date (2026-01-31), or `all`",
    )
    export.add_argument("--format", choices=["csv", "json"], default="json", help="output format")

    slack = sub.add_parser("slack", help="Slack app set-up")
    slack_sub = slack.add_subparsers(dest="slack_command", required=True, metavar="ACTION")
    _subparser_formatting(slack_sub)
    slack_manifest = slack_sub.add_parser(
        "manifest", help='print the Slack app manifest (Slack: "Create an app → From a manifest")'
    )
    slack_manifest.add_argument(
        "--format", choices=["yaml", "json"], default="yaml", help="output format"
    )

    inbox = sub.add_parser("inbox", help="the durable delivery inbox")
    inbox_sub = inbox.add_subparsers(dest="inbox_command", required=True, metavar="ACTION")
    _subparser_formatting(inbox_sub)
    requeue = inbox_sub.add_parser("requeue", help="re-queue dead-lettered deliveries")
    requeue.add_argument("delivery_id", nargs="?", help="one delivery (default: all dead ones)")
    return parser


def _subparser_formatting(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Every subcommand's help shows defaults: `add_parser` builds with this formatter."""
    group._parser_class = functools.partial(  # type: ignore[assignment]
        argparse.ArgumentParser, formatter_class=_HelpFormatter
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler = _HANDLERS[args.command]
        return handler(args)
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


# -- check / scan ----------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from bot.policy.evaluate import evaluate
    from bot.policy.sources import REPOSITORY_POLICY, bundled_policy_path
    from bot.views.git import GitError, GitView

    description = args.description or ""
    if args.description_file:
        description = _read_text(args.description_file)
    try:
        view = GitView(args.repo, args.base, args.head, description=description)
    except GitError as exc:
        raise UsageError(str(exc)) from None
    try:
        if args.policy:
            policy = load_policy_file(_existing(args.policy))
        else:
            # The base revision's copy: a change never governs itself.
            base_copy = view.read_at(view.change.base or view.merge_base, REPOSITORY_POLICY)
            if base_copy is not None:
                name = f"{REPOSITORY_POLICY}@{(view.change.base or '')[:12]}"
                policy = load_policy_text(base_copy.decode("utf-8", "replace"), name)
            else:
                policy = load_policy_file(bundled_policy_path())
        if view.change.base == view.change.head and args.format == "text":
            print(
                f"changegate: pass: nothing to check ({args.base} and {args.head} are one commit)"
            )
            return EXIT_PASS
        with without_cycle_collection():
            verdict = evaluate(policy, view)
    finally:
        view.close()
    return _emit(verdict, args.format, with_range=True)


def cmd_scan(args: argparse.Namespace) -> int:
    from bot.policy.evaluate import evaluate
    from bot.policy.sources import REPOSITORY_POLICY, bundled_policy_path
    from bot.views.directory import DirectoryView

    for path in args.paths:
        if not Path(path).exists():
            raise UsageError(f"{path}: no such file or directory")
    if args.policy:
        policy_path = _existing(args.policy)
    elif Path(REPOSITORY_POLICY).is_file():
        policy_path = Path(REPOSITORY_POLICY)
    else:
        policy_path = bundled_policy_path()
    policy = load_policy_file(policy_path)
    view: FileView = DirectoryView(args.paths)
    with without_cycle_collection():
        verdict = evaluate(_contents_only(policy), view)
    return _emit(verdict, args.format, with_range=False)


@contextlib.contextmanager
def without_cycle_collection() -> Iterator[None]:
    """A check or scan builds millions of small acyclic objects (composed YAML nodes) and
    keeps them until it prints; Python's cycle collector would traverse them again and
    again, which more than doubles the time of a large scan. A short-lived command leaves
    the few cycles it makes to its exit."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _contents_only(policy: Policy) -> Policy:
    return policy.model_copy(update={"rules": [r for r in policy.rules if r.reads_contents]})


def _emit(verdict: Verdict, fmt: str, *, with_range: bool) -> int:
    from bot.report import render

    color = fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(render(verdict, fmt, color=color, with_range=with_range))
    return EXIT_PASS if verdict.decision is Decision.PASS else EXIT_FINDINGS


# -- policy ----------------------------------------------------------------------------


def cmd_policy(args: argparse.Namespace) -> int:
    from bot.policy.schema import policy_json_schema

    if args.policy_command == "schema":
        print(json.dumps(policy_json_schema(), indent=2))
        return EXIT_PASS
    if args.policy_command == "simulate":
        return _simulate(args)
    if args.policy_command == "test":
        from bot.policy.testing import render, run_tests

        path = _existing(args.tests_file)
        results = run_tests(path)
        print(render(path, results))
        return EXIT_PASS if all(r.passed for r in results) else EXIT_FINDINGS
    from bot.policy.validate import validate_file

    policy, warnings = validate_file(_existing(args.file))
    for warning in warnings:
        print(warning, file=sys.stderr)
    print(
        f"{args.file}: ok ({len(policy.rules)} rules, {len(policy.groups)} groups, "
        f"{len(policy.environments)} environments"
        + (f", {len(warnings)} warning{'s' if len(warnings) > 1 else ''}" if warnings else "")
        + ")"
    )
    return EXIT_PASS


def _simulate(args: argparse.Namespace) -> int:
    from bot import simulate
    from bot.store import open_existing
    from bot.worker import build_forges

    candidate = load_policy_file(_existing(args.candidate))
    settings = _settings()
    since = _since(args.since)
    if since is None:
        raise UsageError("policy simulate --since: give a duration (7d) or an ISO date")
    engine = open_existing(settings.database_url)
    replays = simulate.simulate(engine, build_forges(settings), candidate, since)
    print(simulate.render(replays))
    return EXIT_PASS


# -- server side -----------------------------------------------------------------------


def _settings():  # noqa: ANN202 - imported lazily
    from pydantic import ValidationError

    from bot.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        raise UsageError(f"bad settings: {exc}") from None


@contextlib.contextmanager
def _reaching(url: str) -> Iterator[None]:
    """A driver error while connecting becomes the one-line `DatabaseUnavailable`."""
    import sqlalchemy.exc

    from bot.store import unreachable

    try:
        yield
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        raise unreachable(url, exc) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import serve

    settings = _settings()
    with _reaching(settings.database_url):
        serve(settings, args.host, args.port)
    return EXIT_PASS


def cmd_worker(args: argparse.Namespace) -> int:
    from bot.worker import run_workers

    settings = _settings()
    with _reaching(settings.database_url):
        run_workers(settings)
    return EXIT_PASS


def cmd_slack(args: argparse.Namespace) -> int:
    from bot.setup.manifest import dump, slack_manifest

    settings = _settings()
    manifest = slack_manifest(settings.public_url, match_email=settings.slack_match_email)
    sys.stdout.write(dump(manifest, args.format))
    return EXIT_PASS


def cmd_db(args: argparse.Namespace) -> int:
    from bot.store import display_url, upgrade

    settings = _settings()
    with _reaching(settings.database_url):
        upgrade(settings.database_url)
    print(f"database at {display_url(settings.database_url)} is up to date")
    return EXIT_PASS


def cmd_inbox(args: argparse.Namespace) -> int:
    from bot.inbox import requeue_dead
    from bot.store import open_existing

    settings = _settings()
    count = requeue_dead(open_existing(settings.database_url), args.delivery_id)
    print(f"re-queued {count} dead deliver{'y' if count == 1 else 'ies'}")
    return EXIT_PASS


def cmd_audit(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from bot import audit
    from bot.store import open_existing

    engine = open_existing(_settings().database_url)
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
        sys.stdout.write(audit.export(session, _since(args.since), args.format))
    return EXIT_PASS


def _since(value: str | None) -> dt.datetime | None:
    from bot.policy.schema import parse_duration

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


def _existing(path: str) -> Path:
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{path}: is a directory, not a file")
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    return p


def _read_text(path: str) -> str:
    try:
        return _existing(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from None


_HANDLERS = {
    "check": cmd_check,
    "scan": cmd_scan,
    "policy": cmd_policy,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "db": cmd_db,
    "slack": cmd_slack,
    "inbox": cmd_inbox,
    "audit": cmd_audit,
}

if __name__ == "__main__":
    raise SystemExit(main())
