"""The pages' words (bot/pages/advice.py): audit rows as sentences, the verdict in one
sentence."""

from __future__ import annotations

import pytest

from bot import pages


def test_audit_sentences_cover_every_action_the_workflow_writes() -> None:
    detail = {"group": "senior", "reason": "hotfix for the outage", "why": "no", "comment": "ok"}
    for action in (
        "approval.requested",
        "approval.approve",
        "approval.reject",
        "approval.refused",
        "approval.reopened",
        "approval.expired",
        "approval.superseded",
        "break_glass",
        "break_glass.refused",
        "deploy.gate",
    ):
        sentence = pages.audit_sentence(action, "slack", "U0OPS", "abcdef1234", detail)
        assert "abcdef1" in sentence and action not in sentence, action


def _f(action: str) -> dict[str, object]:
    return {"action": action}


def _a(required: int, granted: int) -> dict[str, object]:
    return {"still_needed": max(0, required - granted), "satisfied": granted >= required}


@pytest.mark.parametrize(
    ("findings", "approvals", "sentence"),
    [
        ([], [], "Nothing blocks this change."),
        ([_f("warn")], [], "Nothing blocks this change; 1 warning."),
        ([_f("block"), _f("block")], [], "2 findings block merging."),
        ([_f("require-approval")], [_a(2, 0)], "2 approvals are missing."),
        ([_f("require-approval")], [_a(1, 1)], "Nothing blocks this change."),
        (
            [_f("block"), _f("require-approval"), _f("warn"), _f("warn")],
            [_a(1, 0)],
            "1 finding blocks merging; 1 approval is missing; 2 warnings.",
        ),
    ],
)
def test_summary_sentence(
    findings: list[dict[str, object]], approvals: list[dict[str, object]], sentence: str
) -> None:
    assert pages.summary(findings, approvals) == sentence
