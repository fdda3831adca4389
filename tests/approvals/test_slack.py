"""Slack through the real slack-sdk WebClient against the local stand-in: messages,
retries, user groups, signatures and interaction payloads."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.signature import Clock

from bot.approvals import workflow
from bot.approvals.models import ApprovalRequestRecord, RequestState
from bot.approvals.slack import (
    APPROVE_ACTION,
    REJECT_ACTION,
    ButtonSigner,
    Click,
    InteractionError,
    RejectReason,
    RequestVerifier,
    SlackError,
    SlackNotifier,
    UserGroupResolver,
    UserGroupsUnavailable,
    delivery_id,
    email_of,
    findings_detail,
    parse_interaction,
    reject_modal,
    request_blocks,
)
from bot.change import Action, Finding
from bot.policy.schema import Policy

from .conftest import SIGNING_SECRET, T0, sign
from standins.slack import SlackStandin, block_actions, form, view_submission

SHA = "5555555555555555555555555555555555555555"


def make_request(**overrides: Any) -> ApprovalRequestRecord:
    findings = [
        Finding("deploy/production/values.yaml", 14, "prod-only", "prod-only-change",
                Action.REQUIRE_APPROVAL, "deploy/production/values.yaml",
                "only production changes, no other environment"),
        Finding("deploy/production/app.yaml", None, "prod-only", "prod-only-change",
                Action.REQUIRE_APPROVAL, "deploy/production/app.yaml", "production only <b>"),
    ]  # fmt: skip
    fields: dict[str, Any] = {
        "id": "a" * 32,
        "kind": "change",
        "subject": "github:acme/app#12",
        "sha": SHA,
        "group_name": "senior",
        "rules": ["prod-only"],
        "min_approvals": 1,
        "author_system": "github",
        "author": "bob",
        "state": RequestState.PENDING,
        "repo": "acme/app",
        "number": 12,
        "title": "Raise replicas & memory",
        "url": "https://github.com/acme/app/pull/12",
        "details": {"findings": findings_detail(findings)},
        "created_at": T0,
        "expires_at": T0 + dt.timedelta(hours=4),
    }
    fields.update(overrides)
    return ApprovalRequestRecord(**fields)


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


def test_rate_limited_post_is_retried(
    slack: SlackStandin, client: WebClient, signer: ButtonSigner, policy: Policy
) -> None:
    before = len(slack.calls)
    slack.rate_limit("chat.postMessage", times=1, retry_after=0)
    channel, ts = SlackNotifier(client, signer).post_request(
        make_request(), policy.groups["senior"], "C0APPROVALS"
    )
    statuses = [c.status for c in slack.calls[before:] if c.method == "chat.postMessage"]
    assert statuses == [429, 200]
    assert slack.message(channel, ts)


def test_slack_errors_are_reported(client: WebClient, signer: ButtonSigner, policy: Policy) -> None:
    with pytest.raises(SlackError, match="channel_not_found"):
        SlackNotifier(client, signer).post_request(make_request(), None, "C0NOWHERE")


def test_user_groups_are_cached(slack: SlackStandin, client: WebClient, policy: Policy) -> None:
    clock = [1000.0]
    resolver = UserGroupResolver(client, ttl=60, clock=lambda: clock[0])
    before = len(slack.calls_of("usergroups.users.list"))
    directory = resolver.directory(policy, ["senior"])
    assert directory.expand("S0SRELEADS") == {"u0carol", "u0dave"}
    resolver.directory(policy, ["senior"])
    assert len(slack.calls_of("usergroups.users.list")) == before + 1
    clock[0] += 61
    resolver.members("S0SRELEADS")
    assert len(slack.calls_of("usergroups.users.list")) == before + 2


def test_unknown_user_group(client: WebClient) -> None:
    with pytest.raises(UserGroupsUnavailable, match="S0NOPE does not exist"):
        UserGroupResolver(client).members("S0NOPE")


def test_plan_without_user_groups_is_a_clear_error(client: WebClient) -> None:
    from standins.slack import SlackState

    with SlackStandin.running(SlackState(plan_has_usergroups=False)) as free_plan:
        from bot.approvals.slack import make_client

        resolver = UserGroupResolver(make_client("xoxb-standin-token", free_plan.api_url))
        for _ in range(2):
            with pytest.raises(UserGroupsUnavailable, match="plan_upgrade_required") as err:
                resolver.members("S0SRELEADS")
        assert "List Slack user ids" in str(err.value)
        assert len(free_plan.calls_of("usergroups.users.list")) == 1  # the failure is cached


def test_email_of(client: WebClient) -> None:
    assert email_of(client, "U0BOB") == "bob@example.com"
    assert email_of(client, "U0GHOST") is None


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self.value = now

    def now(self) -> float:
        return self.value


def test_signatures_window_and_replays() -> None:
    now = int(time.time())
    verifier = RequestVerifier(SIGNING_SECRET, clock=FixedClock(now))
    body = form({"type": "block_actions", "actions": []})
    headers = sign(body, now - 10)
    assert verifier.problem(body, headers) is None
    assert verifier.problem(body, headers) == "replayed Slack request"
    assert (
        verifier.problem(body, sign(body, now - 301))
        == "stale Slack request (more than 5 minutes old)"
    )
    assert (
        verifier.problem(body, sign(body, now + 301))
        == "stale Slack request (more than 5 minutes old)"
    )
    assert verifier.problem(body + b"x", sign(body, now)) == "bad Slack signature"
    assert verifier.problem(body, {}) == "missing Slack signature headers"
    other = RequestVerifier("another-secret-entirely", clock=FixedClock(now))
    assert other.problem(body, sign(body, now - 1)) == "bad Slack signature"
    # the replay memory forgets a signature once it could no longer pass the window
    later = sign(body, now - 5)
    assert verifier.problem(body, later) is None
    verifier.clock.value = now + 400  # type: ignore[attr-defined]
    assert verifier.problem(body, later) == "stale Slack request (more than 5 minutes old)"
    assert delivery_id(later) == delivery_id({k.lower(): v for k, v in later.items()})


def test_parse_block_actions(signer: ButtonSigner) -> None:
    value = signer.value("r" * 32, SHA)
    click = parse_interaction(
        form(block_actions(user="U0ALICE", value=value, action_id=APPROVE_ACTION, ts="17.01")),
        signer,
    )
    assert click == Click(
        action="approve",
        request_id="r" * 32,
        sha=SHA,
        user_id="U0ALICE",
        user_name="u0alice",
        team_id="T0CHANGEGATE",
        channel_id="C0APPROVALS",
        message_ts="17.01",
        trigger_id="12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
        response_url="https://hooks.slack.com/actions/A0CHANGEGATE/1232321423432/D09sSasd",
    )


@pytest.mark.parametrize(
    "value",
    [
        "r" * 32 + "." + "6" * 40 + ".AAAAAAAAAAAAAAAAAAAAAAAA",  # made up
        "click_me_123",  # another app's value
        "",
    ],
)
def test_forged_button_values_are_refused(signer: ButtonSigner, value: str) -> None:
    with pytest.raises(InteractionError):
        parse_interaction(
            form(block_actions(user="U0ALICE", value=value, action_id=APPROVE_ACTION)), signer
        )


def test_value_moved_to_another_sha_is_refused(signer: ButtonSigner) -> None:
    request_id, _sha, mac = signer.value("r" * 32, SHA).split(".")
    moved = f"{request_id}.{'6' * 40}.{mac}"
    with pytest.raises(InteractionError, match="bad signature"):
        signer.parse(moved)


def test_other_interactions_are_ignored(signer: ButtonSigner) -> None:
    assert (
        parse_interaction(
            form(block_actions(user="U0ALICE", value="x", action_id="someone_elses")), signer
        )
        is None
    )
    assert parse_interaction(form({"type": "shortcut", "user": {"id": "U1"}}), signer) is None
    with pytest.raises(InteractionError):
        parse_interaction(b"payload=not-json", signer)


def test_reject_modal_and_its_submission(
    slack: SlackStandin, client: WebClient, signer: ButtonSigner
) -> None:
    click = parse_interaction(
        form(
            block_actions(
                user="U0ALICE", value=signer.value("r" * 32, SHA), action_id=REJECT_ACTION, ts="9.9"
            )
        ),
        signer,
    )
    assert isinstance(click, Click) and click.action == "reject"
    SlackNotifier(client, signer).open_reject_modal(click)
    view = slack.views[-1]
    assert (
        view["trigger_id"] == click.trigger_id and view["callback_id"] == "changegate_reject_reason"
    )
    submitted = parse_interaction(
        form(view_submission(user="U0ALICE", private_metadata=view["private_metadata"],
                             reason="  needs a   staging run first ")),
        signer,
    )  # fmt: skip
    assert submitted == RejectReason(
        request_id="r" * 32,
        sha=SHA,
        reason="needs a staging run first",
        user_id="U0ALICE",
        team_id="T0CHANGEGATE",
        channel_id="C0APPROVALS",
        message_ts="9.9",
    )
    tampered = reject_modal(signer, "s" * 32, SHA, "C0APPROVALS", "9.9")["private_metadata"]
    forged = json.loads(tampered)
    forged["d"] = forged["d"].replace("s" * 32, "t" * 32)
    with pytest.raises(InteractionError, match="bad signature"):
        parse_interaction(
            form(view_submission(user="U0ALICE", private_metadata=json.dumps(forged), reason="no")),
            signer,
        )


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


def test_workflow_request_posts(
    slack: SlackStandin, client: WebClient, signer: ButtonSigner, policy: Policy, session: Any
) -> None:
    opened = workflow.open_request(
        session, subject="github:acme/app#3", sha=SHA, group="senior", rules=["prod-only"],
        expires_after=dt.timedelta(hours=4), repo="acme/app", number=3, title="t", now=T0,
    )  # fmt: skip
    channel, ts = SlackNotifier(client, signer).post_request(
        opened.request, policy.groups["senior"], "C0APPROVALS"
    )
    workflow.set_message(session, opened.request.id, channel, ts)
    assert (opened.request.channel, opened.request.message_ts) == (channel, ts)
