"""Block Kit for a request: what the message shows, its update after a decision, and
Block Kit's limits (posted through the real WebClient to the stand-in)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from slack_sdk import WebClient

from bot.approvals.models import RequestState
from bot.policy.schema import Policy
from bot.slack.blocks import request_blocks
from bot.slack.client import SlackNotifier
from bot.slack.interactions import APPROVE_ACTION, REJECT_ACTION
from bot.slack.signing import ButtonSigner

from .conftest import SHA, T0, make_request
from standins.slack import SlackStandin


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


def test_request_message_shows_what_and_who(
    slack: SlackStandin, client: WebClient, signer: ButtonSigner, policy: Policy
) -> None:
    notifier = SlackNotifier(client, signer)
    request = make_request()
    channel, ts = notifier.post_request(request, policy.groups["senior"], "C0APPROVALS")
    message = slack.message(channel, ts)
    body = texts(message.blocks)
    assert message.blocks[0]["text"]["text"] == "Approval needed: acme/app #12"
    assert "<https://github.com/acme/app/pull/12|Raise replicas &amp; memory>" in body
    assert "by bob" in body and "commit `5555555`" in body
    assert "deploy/production/values.yaml:14" in body
    assert "deploy/production/app.yaml: production only &lt;b&gt;" in body
    assert "<@U0ALICE>, <!subteam^S0SRELEADS>" in body
    actions = message.blocks[-1]
    assert actions["type"] == "actions"
    assert [e["action_id"] for e in actions["elements"]] == [APPROVE_ACTION, REJECT_ACTION]
    assert {signer.parse(e["value"]) for e in actions["elements"]} == {(request.id, SHA)}
    assert message.text.startswith("Approval needed: acme/app #12 at 5555555")


def test_update_after_decision_removes_the_buttons(
    slack: SlackStandin, client: WebClient, signer: ButtonSigner, policy: Policy
) -> None:
    notifier = SlackNotifier(client, signer)
    request = make_request()
    request.channel, request.message_ts = notifier.post_request(
        request, policy.groups["senior"], "C0APPROVALS"
    )
    request.state = RequestState.APPROVED
    request.state_reason = "approved by U0ALICE (slack)"
    request.decided_at = T0 + dt.timedelta(minutes=7)
    request.decided_by_system, request.decided_by = "slack", "U0ALICE"
    notifier.update_request(request, policy.groups["senior"])
    message = slack.message(request.channel, request.message_ts)
    assert message.edits == 1
    assert all(b["type"] != "actions" for b in message.blocks)
    outcome = message.blocks[-1]["elements"][0]["text"]
    assert outcome.startswith(":white_check_mark: *Approved* by <@U0ALICE> · ")
    assert outcome.endswith("\napproved by U0ALICE (slack)")
    assert f"<!date^{int(dt.datetime(2024, 6, 3, 9, 7, tzinfo=dt.UTC).timestamp())}^" in outcome


def test_long_finding_lists_stay_within_block_kit_limits(signer: ButtonSigner) -> None:
    many = [
        {"rule": "prod-only", "path": f"deploy/production/{'x' * 200}{i}.yaml", "line": i,
         "message": "m" * 500}
        for i in range(40)
    ]  # fmt: skip
    blocks = request_blocks(
        make_request(details={"findings": many}, title="t" * 400), group=None, signer=signer
    )
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
    listed = next(b["text"]["text"] for b in blocks if "Needs approval" in str(b))
    shown = listed.count("\n• ")
    assert 1 <= shown <= 10
    assert listed.endswith(f"…and {40 - shown} more")
