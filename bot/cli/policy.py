"""`changegate policy`: validate, schema, test, simulate."""

from __future__ import annotations

import argparse
import json
import sys

from bot.cli.common import (
    EXIT_FINDINGS,
    EXIT_PASS,
    Subcommands,
    UsageError,
    existing,
    settings,
    since,
    subcommands,
)
from bot.policy.schema import load_policy_file


def register(sub: Subcommands[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser(
        "policy", help="validate a policy, print its JSON Schema, or simulate a candidate"
    )
    policy.set_defaults(run=cmd_policy)
    actions = subcommands(policy, "policy_command", "ACTION")
    validate = actions.add_parser("validate", help="validate a policy file")
    validate.add_argument("file")
    actions.add_parser("schema", help="print the policy file's JSON Schema")
    test = actions.add_parser(
        "test", help="run a policy's test cases (exit 1 with a diff on any mismatch)"
    )
    test.add_argument("tests_file", metavar="FILE")
    simulate = actions.add_parser(
        "simulate", help="replay recent changes against a candidate policy (server database)"
    )
    simulate.add_argument("candidate", help="the candidate policy file")
    simulate.add_argument("--since", default="7d", help="a duration (7d) or an ISO date")


def cmd_policy(args: argparse.Namespace) -> int:
    from bot.policy.schema import policy_json_schema

    if args.policy_command == "schema":
        print(json.dumps(policy_json_schema(), indent=2))
        return EXIT_PASS
    if args.policy_command == "simulate":
        return _simulate(args)
    if args.policy_command == "test":
        from bot.policy.testing import render, run_tests

        path = existing(args.tests_file)
        results = run_tests(path)
        print(render(path, results))
        return EXIT_PASS if all(r.passed for r in results) else EXIT_FINDINGS
    from bot.policy.validate import validate_file

    policy, warnings = validate_file(existing(args.file))
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

    candidate = load_policy_file(existing(args.candidate))
    config = settings()
    start = since(args.since)
    if start is None:
        raise UsageError("policy simulate --since: give a duration (7d) or an ISO date")
    engine = open_existing(config.database_url)
    replays = simulate.simulate(engine, build_forges(config), candidate, start)
    print(simulate.render(replays))
    return EXIT_PASS
