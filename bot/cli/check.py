"""`changegate check` (a git range) and `changegate scan` (files' contents)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from bot.change import Decision, Verdict
from bot.cli.common import (
    EXIT_FINDINGS,
    EXIT_PASS,
    Subcommands,
    UsageError,
    existing,
    read_text,
)
from bot.policy.schema import Policy, load_policy_file, load_policy_text
from bot.views.base import FileView

FORMATS = ["text", "json", "sarif"]


def register(sub: Subcommands[argparse.ArgumentParser]) -> None:
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
    check.add_argument(
        "--label",
        action="append",
        dest="labels",
        metavar="LABEL",
        help="a label of the change, as a forge would say (repeat for more); without any, "
        "labels are unknown and conditions or expressions reading them fail closed",
    )
    check.add_argument(
        "--draft",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the change is (--draft) or is not (--no-draft) a draft; unknown without either",
    )
    check.add_argument("--format", choices=FORMATS, default="text", help="output format")
    check.set_defaults(run=cmd_check)

    scan = sub.add_parser("scan", help="check files' contents (no change rules)")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument(
        "--policy", help="policy file (default: ./.changegate.yml, else the bundled policy)"
    )
    scan.add_argument("--format", choices=FORMATS, default="text", help="output format")
    scan.set_defaults(run=cmd_scan)


def cmd_check(args: argparse.Namespace) -> int:
    from bot.policy.evaluate import evaluate
    from bot.policy.sources import REPOSITORY_POLICY, bundled_policy_path
    from bot.views.git import GitError, GitView, Stated

    description = args.description or ""
    if args.description_file:
        description = read_text(args.description_file)
    try:
        view = GitView(
            args.repo,
            args.base,
            args.head,
            stated=Stated(
                description=description,
                labels=tuple(args.labels) if args.labels is not None else None,
                draft=args.draft,
            ),
        )
    except GitError as exc:
        raise UsageError(str(exc)) from None
    try:
        if args.policy:
            policy = load_policy_file(existing(args.policy))
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
        policy_path = existing(args.policy)
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
