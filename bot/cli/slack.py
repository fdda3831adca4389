"""`changegate slack manifest`: the Slack app manifest to paste into Slack."""

from __future__ import annotations

import argparse
import sys

from bot.cli.common import EXIT_PASS, Subcommands, settings, subcommands


def register(sub: Subcommands[argparse.ArgumentParser]) -> None:
    slack = sub.add_parser("slack", help="Slack app set-up")
    slack.set_defaults(run=cmd_slack)
    actions = subcommands(slack, "slack_command", "ACTION")
    manifest = actions.add_parser(
        "manifest", help='print the Slack app manifest (Slack: "Create an app → From a manifest")'
    )
    manifest.add_argument(
        "--format", choices=["yaml", "json"], default="yaml", help="output format"
    )


def cmd_slack(args: argparse.Namespace) -> int:
    from bot.setup.manifest import dump, slack_manifest

    config = settings()
    manifest = slack_manifest(config.public_url, match_email=config.slack_match_email)
    sys.stdout.write(dump(manifest, args.format))
    return EXIT_PASS
