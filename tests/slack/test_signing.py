"""Request signatures (window, replays) and button values nobody can forge or move."""

from __future__ import annotations

import time

import pytest
from slack_sdk.signature import Clock

from bot.slack.interactions import APPROVE_ACTION, parse_interaction
from bot.slack.signing import ButtonSigner, InteractionError, RequestVerifier, delivery_id

from .conftest import SHA, SIGNING_SECRET, sign
from standins.slack import block_actions, form


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
