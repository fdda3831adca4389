"""bot/governor/click.py: a Slack click stored by the endpoint and handled by a worker:
refused from another workspace, refused for whoever may not break glass, and an approval
that re-evaluates the pull request at once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Engine

from bot import inbox
from bot.change import Decision
from bot.governor import Governor
from bot.slack.interactions import APPROVE_ACTION, BREAK_GLASS_ACTION

from .conftest import REPO, NotedForge, claimed, interaction, pull, requests
from standins.slack import Message, SlackStandin, block_actions

T0 = dt.datetime(2026, 1, 5, 9, 0)


def asked(parts: Governor, forge: NotedForge, slack: SlackStandin) -> Message:
    """A pull request that needs senior's approval, and its request message in Slack."""
    parts.changes.handle(pull(forge), forge, received_at=T0)
    [message] = [m for m in slack.messages.values() if m.blocks and m.thread_ts is None]
    return message


def click(message: Message, user: str, action_id: str, **changes: Any) -> dict[str, Any]:
    actions = next(b for b in message.blocks if b["type"] == "actions")
    value = next(e["value"] for e in actions["elements"] if e["action_id"] == action_id)
    payload = block_actions(user=user, value=value, action_id=action_id,
                            channel=message.channel, ts=message.ts)  # fmt: skip
    payload.update(changes)
    return payload


def test_a_click_queues_behind_its_pull_request(
    parts: Governor, forge: NotedForge, slack: SlackStandin
) -> None:
    assert parts.clicks is not None
    message = asked(parts, forge, slack)
    body = interaction(click(message, "U0ALICE", APPROVE_ACTION)).body
    assert parts.clicks.inbox_subject(body) == f"github:{REPO}#7"
    assert parts.clicks.inbox_subject(b"payload=not-json") == ""


def test_an_approval_in_slack_passes_the_check_at_once(
    parts: Governor, forge: NotedForge, engine: Engine, slack: SlackStandin
) -> None:
    assert parts.clicks is not None
    message = asked(parts, forge, slack)
    delivery = interaction(click(message, "U0ALICE", APPROVE_ACTION))
    item = claimed(engine, delivery, parts.clicks.inbox_subject(delivery.body))
    state, note = parts.clicks.handle_delivery(item)
    assert state == inbox.DONE and note is not None and note.startswith("recorded")
    assert forge.last.verdict.decision is Decision.PASS  # re-evaluated by the same worker
    assert [r.state for r in requests(engine)] == ["approved"]


def test_a_click_from_another_workspace_is_refused(
    parts: Governor, forge: NotedForge, engine: Engine, slack: SlackStandin
) -> None:
    assert parts.clicks is not None
    message = asked(parts, forge, slack)
    foreign = click(message, "U0ALICE", APPROVE_ACTION, team={"id": "T0OTHER", "domain": "x"})
    item = claimed(engine, interaction(foreign), f"github:{REPO}#7")
    state, note = parts.clicks.handle_delivery(item)
    assert state == inbox.IGNORED
    assert note == "interaction refused: from workspace T0OTHER, not T0CHANGEGATE"
    assert forge.last.verdict.decision is Decision.APPROVAL_REQUIRED
    assert [r.state for r in requests(engine)] == ["pending"]


def test_only_the_emergency_group_may_break_glass(
    parts: Governor, forge: NotedForge, engine: Engine, slack: SlackStandin
) -> None:
    assert parts.clicks is not None
    message = asked(parts, forge, slack)
    item = claimed(engine, interaction(click(message, "U0ALICE", BREAK_GLASS_ACTION)), "s")
    state, note = parts.clicks.handle_delivery(item)
    assert (state, note) == (inbox.DONE, "refused: Only members of emergency can break glass.")
    [ephemeral] = slack.ephemerals
    assert ephemeral["user"] == "U0ALICE" and "Only members of emergency" in ephemeral["text"]
    assert [r.state for r in requests(engine)] == ["pending"]


def test_a_delivery_that_is_no_interaction_of_ours_is_ignored(
    parts: Governor, engine: Engine
) -> None:
    assert parts.clicks is not None
    other = {"type": "shortcut", "team": {"id": "T0CHANGEGATE"}, "user": {"id": "U0ALICE"}}
    item = claimed(engine, interaction(other), "")
    assert parts.clicks.handle_delivery(item) == (inbox.IGNORED, "not a changegate interaction")
