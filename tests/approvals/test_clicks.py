"""`handle_event` takes decisions only: a Reject or Break glass click is not one (the
endpoint opens their modals; `bot.governor.click` handles break-glass)."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from sqlmodel import Session

from bot.approvals.clicks import handle_event
from bot.policy.schema import Policy
from bot.slack.client import SlackNotifier
from bot.slack.interactions import Click, ClickAction
from bot.slack.signing import ButtonSigner


@pytest.mark.parametrize("action", ["reject", "break-glass"])
def test_a_click_that_only_opens_a_modal_is_no_decision(
    session: Session, policy: Policy, client: WebClient, signer: ButtonSigner, action: ClickAction
) -> None:
    click = Click(
        action=action,
        request_id="r" * 32, sha="5" * 40, user_id="U0ALICE", user_name="alice",
        team_id="T0CHANGEGATE", channel_id="C0APPROVALS", message_ts="1.2",
        trigger_id="", response_url="",
    )  # fmt: skip
    with pytest.raises(ValueError, match=f"a {action} click is not a decision"):
        handle_event(session, policy, click, notifier=SlackNotifier(client, signer))
