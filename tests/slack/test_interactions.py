"""Interaction payloads parsed into clicks and submitted reasons; anything not ours ignored."""

from __future__ import annotations

import json

import pytest
from slack_sdk import WebClient

from bot.slack.blocks import reject_modal
from bot.slack.client import SlackNotifier
from bot.slack.interactions import (
    APPROVE_ACTION,
    REJECT_ACTION,
    Click,
    RejectReason,
    parse_interaction,
)
from bot.slack.signing import ButtonSigner, InteractionError

from .conftest import SHA
from standins.slack import SlackStandin, block_actions, form, view_submission


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
