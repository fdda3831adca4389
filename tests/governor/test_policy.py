"""bot/governor/policy.py: the one way to the policy that governs a change (the admin's,
tightened by the repository's `.changegate.yml`), and the holder that keeps the last good
admin policy when its file turns invalid."""

from __future__ import annotations

import os
from pathlib import Path

from serverkit.testforge import MemoryForge

from bot.change import Change
from bot.governor.policy import PolicyHolder, effective_policy, policy_at

from .conftest import POLICY, REPO

REPO_POLICY = """\
version: 1
rules:
  - id: no-latest
    kind: unpinned-image
    action: block
"""


def test_the_repository_policy_tightens_the_admin_policy(policy_file: Path) -> None:
    admin = PolicyHolder(policy_file, reload_seconds=0).policy
    forge = MemoryForge(repo_policy=REPO_POLICY)
    change = Change(repo=REPO, base=None, head="h", forge="github")
    governing = effective_policy(admin, forge, change)
    assert [r.id for r in governing.rules] == ["pinned-images", "prod-only", "no-latest"]
    assert [r.id for r in effective_policy(admin, MemoryForge(), change).rules] == [
        "pinned-images",
        "prod-only",
    ]


def test_a_stored_request_gets_the_same_policy_as_its_change(policy_file: Path) -> None:
    admin = PolicyHolder(policy_file, reload_seconds=0).policy
    forges = {"github": MemoryForge(repo_policy=REPO_POLICY)}
    at = policy_at(admin, forges, "github", REPO, "h")
    assert [r.id for r in at.rules] == ["pinned-images", "prod-only", "no-latest"]
    assert policy_at(admin, forges, "gitlab", REPO, "h") is admin  # not configured here
    assert policy_at(admin, forges, "github", "", "h") is admin


def test_an_invalid_policy_file_keeps_the_last_good_policy(policy_file: Path) -> None:
    holder = PolicyHolder(policy_file, reload_seconds=0)
    good = holder.policy
    policy_file.write_text(POLICY + "rules: [oops\n")
    os.utime(policy_file, ns=(1, 1))  # a new stamp even within the same mtime tick
    assert holder.reload_if_changed() is False
    assert holder.policy is good and holder.error is not None
    policy_file.write_text(POLICY.replace("action: block", "action: warn"))
    assert holder.reload_if_changed() is True
    assert holder.error is None and holder.policy.rules[0].action == "warn"
