"""The start page's advice (bot/setup/flow.py `next_steps`, `partly_configured`), apart
from the HTTP flow that test_first_run.py drives."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bot.setup.flow import next_steps, partly_configured
from bot.setup.stored import StoredApp

ON = {"admin pages": "token"}
OFF = {"admin pages": "off"}


def settings(**values: Any) -> SimpleNamespace:
    base = {
        "github_enabled": False,
        "github_app_id": None,
        "github_private_key_path": None,
        "github_webhook_secret": None,
        "slack_enabled": True,
    }
    return SimpleNamespace(**{**base, **values})


def test_a_clean_slate_is_told_to_register_the_app() -> None:
    s = settings()
    assert not partly_configured(s)
    steps = next_steps(s, ON, None, "policy.yml")
    assert steps[0].startswith("Register the GitHub App (below)")
    assert steps[-1] == "Edit the policy (policy.yml); it reloads without a restart."
    assert len(steps) == 2


def test_a_half_configured_github_is_finished_by_hand() -> None:
    s = settings(github_webhook_secret="from the environment")
    assert partly_configured(s)
    assert next_steps(s, ON, None, "p.yml")[0].startswith("GitHub is partly configured")


def test_after_registering_install_then_slack_and_admin_pages() -> None:
    kept = StoredApp("7", "cg", "https://github.com/apps/cg", "acme", "c", "s", "w", "a", "b")
    s = settings(github_enabled=True, github_app_id="7", slack_enabled=False)
    steps = next_steps(s, OFF, kept, "p.yml")
    assert (
        steps[0]
        == "Install the App on your repositories: https://github.com/apps/cg/installations/new"
    )
    assert steps[1].startswith("Slack approvals: create a Slack app")
    assert steps[2].startswith("Admin pages: set CHANGEGATE_ADMIN_TOKEN")
    assert next_steps(s, OFF, None, "p.yml")[0].startswith("Slack approvals")  # configured by hand
