"""A request's life in Slack, end to end: post, signed clicks (refused, refused, approved),
the message updated, a new push superseding it, and a reject with a reason. The real
WebClient talks to the stand-in; payloads are signed with slack-sdk's signature code."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlmodel import Session

from bot import audit
from bot.approvals.break_glass import BreakGlass, break_glass
from bot.approvals.clicks import Handled, handle_event
from bot.approvals.decisions import Ballot, refusal
from bot.approvals.models import RequestState
from bot.approvals.queries import approvals_for, rejection_for
from bot.approvals.requests import (
    Opened,
    RequestSpec,
    change_subject,
    expire_due,
    get_request,
    open_request,
    reminders_due,
    set_message,
)
from bot.policy.schema import Policy
from bot.slack.client import SlackNotifier, UserGroupResolver
from bot.slack.interactions import (
    APPROVE_ACTION,
    REJECT_ACTION,
    BreakGlassReason,
    Click,
    parse_interaction,
)
from bot.slack.signing import ButtonSigner, RequestVerifier, delivery_id

from .conftest import SIGNING_SECRET, sign
from standins.slack import SlackStandin, block_actions, form, view_submission

SHA1 = "7777777777777777777777777777777777777777"
SHA2 = "8888888888888888888888888888888888888888"
SUBJECT = change_subject("github", "acme/app", 41)


class Flow:
    """What the web endpoint and the worker will do with an interaction, in one place.

    A Reject click asks for a reason as `bot.governor.click.Clicks` does: the endpoint opens the
    modal for someone who may decide (`fast_path`), the worker tells anyone else why not
    (`_reject_click`); the submitted reason is a decision like an Approve click."""

    def __init__(
        self, session: Session, policy: Policy, client: WebClient, slack: SlackStandin
    ) -> None:
        self.session, self.policy, self.slack = session, policy, slack
        self.signer = ButtonSigner(SIGNING_SECRET)
        self.notifier = SlackNotifier(client, self.signer)
        self.resolver = UserGroupResolver(client, ttl=300)
        self.verifier = RequestVerifier(SIGNING_SECRET)

    def open(self, sha: str) -> Opened:
        opened = open_request(
            self.session,
            RequestSpec(
                subject=SUBJECT,
                sha=sha,
                group="senior",
                rules=["prod-only"],
                expires_after=dt.timedelta(hours=4),
                author=("github", "bob"),
                repo="acme/app",
                number=41,
                title="Bump prod memory",
                url="https://github.com/acme/app/pull/41",
                details={
                    "findings": [
                        {
                            "rule": "prod-only",
                            "path": "deploy/production/app.yaml",
                            "line": 3,
                            "message": "only production changes",
                        }
                    ]
                },
            ),
        )
        channel, ts = self.notifier.post_request(
            opened.request, self.policy.groups["senior"], "C0APPROVALS"
        )
        set_message(self.session, opened.request.id, channel, ts)
        for old in opened.superseded:
            self.notifier.update_request(old, self.policy.groups["senior"])
        self.session.commit()
        return opened

    def button(self, request_id: str, action_id: str) -> str:
        request = get_request(self.session, request_id)
        assert request is not None and request.channel and request.message_ts
        message = self.slack.message(request.channel, request.message_ts)
        actions = next(b for b in message.blocks if b["type"] == "actions")
        return next(e["value"] for e in actions["elements"] if e["action_id"] == action_id)

    def receive(self, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = form(payload)
        return body, sign(body)

    def process(self, body: bytes, headers: dict[str, str]) -> Handled | int:
        if self.verifier.problem(body, headers) is not None:
            return 401
        event = parse_interaction(body, self.signer)
        assert event is not None and not isinstance(event, BreakGlassReason)
        if isinstance(event, Click) and event.action == "reject":
            return self.ask_reason(event)
        handled = handle_event(
            self.session, self.policy, event, notifier=self.notifier, resolver=self.resolver,
            delivery_id=f"slack:{delivery_id(headers)}",
        )  # fmt: skip
        self.session.commit()
        return handled

    def ask_reason(self, click: Click) -> Handled:
        request = get_request(self.session, click.request_id)
        assert request is not None
        ballot = Ballot(request.id, click.sha, ("slack", click.user_id), "reject")
        directory = self.resolver.directory(self.policy, [request.group_name])
        why = refusal(self.session, self.policy, request, ballot, directory=directory)
        self.session.commit()
        if why is not None:
            self.notifier.reply(click.channel_id, click.user_id, why)
            return Handled(False, why, request)
        self.notifier.open_reject_modal(click)
        return Handled(True, "asked for a reason", request)

    def click(self, user: str, request_id: str, action_id: str = APPROVE_ACTION) -> Handled | int:
        value = self.button(request_id, action_id)
        request = get_request(self.session, request_id)
        assert request is not None
        payload = block_actions(
            user=user, value=value, action_id=action_id,
            channel=request.channel or "", ts=request.message_ts or "",
        )  # fmt: skip
        return self.process(*self.receive(payload))

    def last_ephemeral(self) -> dict[str, Any]:
        return self.slack.ephemerals[-1]


@pytest.fixture
def flow(session: Session, policy: Policy, client: WebClient, slack: SlackStandin) -> Flow:
    return Flow(session, policy, client, slack)


def test_refused_refused_approved_then_superseded(flow: Flow) -> None:
    first = flow.open(SHA1).request

    mallory = flow.click("U0MALLORY", first.id)
    assert isinstance(mallory, Handled) and not mallory.accepted
    assert flow.last_ephemeral()["user"] == "U0MALLORY"
    assert "not a member of senior" in flow.last_ephemeral()["text"]

    bob = flow.click("U0BOB", first.id)
    assert isinstance(bob, Handled) and not bob.accepted
    assert "You made this change" in flow.last_ephemeral()["text"]
    assert first.state == RequestState.PENDING

    # Dave is a senior only through the S0SRELEADS user group (usergroups.users.list)
    dave = flow.click("U0DAVE", first.id)
    assert isinstance(dave, Handled) and dave.accepted and dave.settled
    assert first.state == RequestState.APPROVED
    message = flow.slack.message(first.channel or "", first.message_ts or "")
    assert all(b["type"] != "actions" for b in message.blocks)
    outcome = message.blocks[-1]["elements"][0]["text"]
    assert outcome.startswith(":white_check_mark: *Approved* by <@U0DAVE> · <!date^")
    assert outcome.endswith("\napproved by U0DAVE (slack)")
    assert [a.user for a in approvals_for(flow.session, SUBJECT, SHA1)] == ["U0DAVE"]

    # a new push: the old request is superseded and its message says so
    second = flow.open(SHA2)
    assert [r.id for r in second.superseded] == []  # the approved one is not pending
    third_sha = "9" * 40
    third = flow.open(third_sha)
    assert [r.id for r in third.superseded] == [second.request.id]
    old_message = flow.slack.message(second.request.channel or "", second.request.message_ts or "")
    outcome = old_message.blocks[-1]["elements"][0]["text"]
    assert outcome.startswith(":fast_forward: *Superseded* · <!date^")
    assert "superseded by 9999999: a newer commit arrived" in outcome

    # a click on the superseded request, from a message a client had not refreshed yet
    stale_value = flow.signer.value(second.request.id, SHA2)
    payload = block_actions(user="U0ALICE", value=stale_value, action_id=APPROVE_ACTION)
    late = flow.process(*flow.receive(payload))
    assert isinstance(late, Handled) and not late.accepted
    assert "out of date" in flow.last_ephemeral()["text"]
    assert approvals_for(flow.session, SUBJECT, SHA2) == []
    assert audit.verify(flow.session) == []


def test_replayed_and_stale_requests_get_401(flow: Flow) -> None:
    request = flow.open(SHA1).request
    value = flow.button(request.id, APPROVE_ACTION)
    body, headers = flow.receive(
        block_actions(user="U0MALLORY", value=value, action_id=APPROVE_ACTION)
    )
    assert isinstance(flow.process(body, headers), Handled)
    assert flow.process(body, headers) == 401  # replayed
    stale = sign(body, int(headers["X-Slack-Request-Timestamp"]) - 301)
    assert flow.process(body, stale) == 401
    forged = dict(headers, **{"X-Slack-Signature": "v0=" + "0" * 64})
    assert flow.process(body, forged) == 401


def test_reject_asks_for_a_reason_that_reaches_the_request(flow: Flow) -> None:
    request = flow.open(SHA1).request
    views_before = len(flow.slack.views)
    outsider = flow.click("U0MALLORY", request.id, REJECT_ACTION)
    assert isinstance(outsider, Handled) and not outsider.accepted
    assert len(flow.slack.views) == views_before  # no modal for someone who may not decide

    asked = flow.click("U0ALICE", request.id, REJECT_ACTION)
    assert isinstance(asked, Handled) and asked.accepted and not asked.settled
    view = flow.slack.views[-1]
    assert request.state == RequestState.PENDING

    submission = view_submission(
        user="U0ALICE",
        private_metadata=view["private_metadata"],
        reason="Roll it to staging first <!channel> <https://evil.example|docs>",
    )
    done = flow.process(*flow.receive(submission))
    assert isinstance(done, Handled) and done.settled
    assert request.state == RequestState.REJECTED
    rejection = rejection_for(flow.session, SUBJECT, SHA1)
    assert rejection is not None
    assert rejection.reason == "Roll it to staging first <!channel> <https://evil.example|docs>"
    message = flow.slack.message(request.channel or "", request.message_ts or "")
    outcome = message.blocks[-1]["elements"][0]["text"]
    assert outcome.startswith(":x: *Rejected* by <@U0ALICE> · <!date^")
    # the reason is the user's text: shown, never interpreted as a mention or a link
    assert outcome.endswith(
        "\nrejected by U0ALICE (slack): Roll it to staging first "
        "&lt;!channel&gt; &lt;https://evil.example|docs&gt;"
    )


def test_reminder_and_expiry_reach_the_message(flow: Flow) -> None:
    request = flow.open(SHA1).request
    nudged = reminders_due(flow.session, request.created_at + dt.timedelta(hours=3))
    assert [r.id for r in nudged] == [request.id]
    flow.notifier.remind(nudged[0], flow.policy.groups["senior"])
    reminder = next(m for m in flow.slack.messages.values() if m.thread_ts == request.message_ts)
    assert reminder.text.startswith("Reminder: <@U0ALICE>, <!subteam^S0SRELEADS>, this request")

    expired = expire_due(flow.session, request.expires_at)
    for item in expired:
        flow.notifier.update_request(item, flow.policy.groups["senior"])
    flow.session.commit()
    message = flow.slack.message(request.channel or "", request.message_ts or "")
    outcome = message.blocks[-1]["elements"][0]["text"]
    assert outcome.startswith(":hourglass: *Expired*")
    assert outcome.endswith("\nexpired without enough approvals")


def test_break_glass_is_announced_and_the_retro_review_posted(flow: Flow) -> None:
    request = flow.open(SHA1).request
    glass = break_glass(
        flow.session,
        flow.policy,
        BreakGlass(
            subject=SUBJECT,
            sha=SHA1,
            actor=("slack", "U0OPS"),
            reason="checkout down, shipping the fix now",
        ),
    )
    assert glass.accepted and glass.retro_review is not None
    for overridden in glass.overridden:
        flow.notifier.update_request(overridden, flow.policy.groups["senior"])
    ts = flow.notifier.announce(
        "C0APPROVALS", f":rotating_light: <@U0OPS> broke glass on {SHA1[:7]}: {glass.message}",
        thread_ts=request.message_ts,
    )  # fmt: skip
    assert flow.slack.message("C0APPROVALS", ts).thread_ts == request.message_ts
    retro = glass.retro_review
    channel, rts = flow.notifier.post_request(retro, flow.policy.groups["senior"], "C0APPROVALS")
    posted = flow.slack.message(channel, rts)
    assert posted.blocks[0]["text"]["text"] == "Retro-review after break-glass: acme/app #41"
    assert "*Break-glass reason:* checkout down, shipping the fix now" in str(posted.blocks)
    old = flow.slack.message(request.channel or "", request.message_ts or "")
    assert "*Approved* by <@U0OPS>" in old.blocks[-1]["elements"][0]["text"]


@pytest.mark.parametrize("match_email", [True, False], ids=["email-matching", "no-matching"])
def test_a_slack_user_the_policy_does_not_list_is_matched_by_email(
    session: Session, policy: Policy, client: WebClient, slack: SlackStandin, match_email: bool
) -> None:
    """Erin is in `senior` by her GitHub login and in `people:` with her e-mail, but with no
    Slack id; her Slack profile has that e-mail. Bob (the author) clicks from a second,
    unlisted Slack account with his e-mail: still the author. Only with matching on."""
    erin = {"name": "erin", "github": "erin", "email": "erin@example.com"}
    policy = policy.model_copy(
        update={
            "people": [*policy.people, type(policy.people[0])(**erin)],
            "groups": {
                **policy.groups,
                "senior": policy.groups["senior"].model_copy(
                    update={"github": [*policy.groups["senior"].github, "erin"]}
                ),
            },
        }
    )
    slack.state.users["U0ERIN"] = {"id": "U0ERIN", "profile": {"email": "Erin@Example.com"}}
    slack.state.users["U0BOB2"] = {"id": "U0BOB2", "profile": {"email": "bob@example.com"}}
    flow = Flow(session, policy, client, slack)
    flow.resolver = UserGroupResolver(client, ttl=300, match_email=match_email)
    request = flow.open(SHA1).request
    before = len(slack.calls_of("users.info"))  # the stand-in serves the whole module

    bob = flow.click("U0BOB2", request.id)
    assert isinstance(bob, Handled) and not bob.accepted
    bob_told = flow.last_ephemeral()["text"]
    erin_click = flow.click("U0ERIN", request.id)
    assert isinstance(erin_click, Handled)
    asked = sorted(c.args["user"] for c in slack.calls_of("users.info")[before:])
    if match_email:
        assert "You made this change" in bob_told
        assert erin_click.accepted and request.state == RequestState.APPROVED
        # one users.info per Slack user, cached: bob's second account and erin
        assert asked == ["U0BOB2", "U0ERIN"]
    else:
        assert "not a member of senior" in bob_told
        assert "not a member of senior" in flow.last_ephemeral()["text"]
        assert not erin_click.accepted and request.state == RequestState.PENDING
        assert asked == []
