"""What the pages say in words: how to fix a finding of each rule kind, what each action
does, the verdict in one sentence, and an audit row as a sentence.

The message of a finding says what is wrong; the advice here says how to make it right
(policy-bot's most common complaint is a page that only says "no"). Pure functions and
tables: no store, no request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.pages.templates import short

#: What to do about a finding, per rule kind: the message says what is wrong, this says
#: how to make it right (policy-bot's most common complaint is a page that only says "no").
FIXES: dict[str, str] = {
    "unpinned-image": (
        "Pin the image to a release tag that never moves (nginx:1.25.3) or to a digest "
        "(nginx@sha256:…). For a GitHub Action, use the full 40-character commit SHA."
    ),
    "yaml-version-coercion": (
        'Quote the value ("1.20") so YAML reads it as the string you wrote, not a number '
        "or a boolean."
    ),
    "shared-resource": (
        "Give each environment its own datastore instance (its own host and port). "
        "Another database number or name on the same server is still the same instance."
    ),
    "prod-only-change": (
        "Make the same change in another environment (staging) in this change, or get "
        "the approval asked for on this page."
    ),
    "migration-playbook": (
        "Link the migration playbook in the description: a URL matching the policy's "
        "pattern, or a docs/playbooks/….md file that exists at the head commit."
    ),
    "dependency-major-upgrade": (
        "Read the upgrade notes of the new major version and check every caller of what "
        "it removed, then get the approval asked for on this page."
    ),
    "env-drift": (
        "Set the key in another environment's configuration too (staging's values, manifest "
        "or .env), so the setting runs somewhere before production, or get the approval."
    ),
    "expression": (
        "The policy's own rule matched this: its message says what it asks for. If the "
        "check could not evaluate the rule, fix what it names, or get the approval."
    ),
    "incomplete-change": (
        "changegate could not list every file of this change, so it cannot vouch for it. "
        "Split it into smaller pull/merge requests, or re-run the check (a listing that ran "
        "out of time may finish)."
    ),
}
ACTION_NOTES = {
    "block": "Blocks merging until the file is fixed.",
    "require-approval": "Needs an approval from the rule's group (see the approvals).",
    "warn": "Shown for information; it does not block.",
}
DECISION_LABELS = {
    "fail": "Blocked",
    "approval_required": "Waiting for approval",
    "pass": "Passed",
}


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summary(findings: list[dict[str, Any]], approvals: list[dict[str, Any]]) -> str:
    """The verdict in one sentence: what blocks, what is missing, what is only a warning."""
    blocking = sum(1 for f in findings if f["action"] == "block")
    missing = sum(a["still_needed"] for a in approvals if not a["satisfied"])
    warnings = sum(1 for f in findings if f["action"] == "warn" and not f.get("preexisting"))
    before = sum(1 for f in findings if f.get("preexisting"))
    parts = []
    if blocking:
        parts.append(_plural(blocking, "finding blocks merging", "findings block merging"))
    if missing:
        parts.append(_plural(missing, "approval is missing", "approvals are missing"))
    if not parts:
        parts.append("nothing blocks this change")
    if warnings:
        parts.append(_plural(warnings, "warning", "warnings"))
    if before:
        parts.append(f"{before} already present before this change")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def audit_sentence(
    action: str, system: str, actor: str, sha: str, detail: Mapping[str, Any]
) -> str:
    """One audit row as a sentence a person reads in a timeline."""
    who = f"{actor} ({system})" if actor else "changegate"
    group = detail.get("group", "")
    reason = detail.get("reason") or ""
    at = short(sha)
    if action == "approval.requested":
        return f"Approval requested from {group} for {at}"
    if action == "approval.approve":
        return f"{who} approved {at}" + (f": {reason}" if reason else "")
    if action == "approval.reject":
        return f"{who} rejected {at}" + (f": {reason}" if reason else "")
    if action == "approval.refused":
        clicked = detail.get("clicked", "decision")
        return f"{who} tried to {clicked} {at}; it did not count: {detail.get('why', '')}"
    if action == "approval.reopened":
        return f"Request for {group} at {at} reopened (the head is {at} again)"
    if action.startswith("approval."):
        state = action.split(".", 1)[1]
        return f"Request for {group} at {at} {state}" + (f": {reason}" if reason else "")
    if action == "break_glass":
        return f"{who} broke glass on {at}: {reason}"
    if action == "break_glass.refused":
        return f"{who} tried to break glass on {at}: {detail.get('why', '')}"
    if action == "deploy.gate":
        return f"Deploy gate for {at}: {detail.get('comment', '')}".rstrip(": ")
    return f"{action} by {who} on {at}".rstrip()
