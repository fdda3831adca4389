"""What Slack sends back when someone uses our messages: clicks and submitted modals.

The action and callback ids our blocks carry are named here, with the typed events a
form-encoded `block_actions` / `view_submission` request is parsed into. Values and modal
metadata are checked with `ButtonSigner`: a forged one is an `InteractionError`.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from bot.slack.signing import ButtonSigner, InteractionError

APPROVE_ACTION = "changegate_approve"
REJECT_ACTION = "changegate_reject"
REJECT_MODAL = "changegate_reject_reason"
BREAK_GLASS_ACTION = "changegate_break_glass"
BREAK_GLASS_MODAL = "changegate_break_glass_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"

ClickAction = Literal["approve", "reject", "break-glass"]

_ACTIONS: dict[str, ClickAction] = {
    APPROVE_ACTION: "approve",
    REJECT_ACTION: "reject",
    BREAK_GLASS_ACTION: "break-glass",
}


@dataclass(frozen=True)
class Click:
    """An Approve, Reject or Break glass button pressed on a request message."""

    action: ClickAction
    request_id: str
    sha: str
    user_id: str
    user_name: str
    team_id: str
    channel_id: str
    message_ts: str
    trigger_id: str
    response_url: str


@dataclass(frozen=True)
class BreakGlassReason:
    """The break-glass modal, submitted: an emergency override with a written reason."""

    request_id: str
    sha: str
    reason: str
    user_id: str
    team_id: str
    channel_id: str
    message_ts: str


@dataclass(frozen=True)
class RejectReason:
    """The reject-reason modal, submitted."""

    request_id: str
    sha: str
    reason: str
    user_id: str
    team_id: str
    channel_id: str
    message_ts: str


def parse_interaction(
    body: bytes | str, signer: ButtonSigner
) -> Click | RejectReason | BreakGlassReason | None:
    """Turn a form-encoded interaction request into a typed event.

    None: an interaction that is not ours (another app's button, a view we did not open).
    InteractionError: malformed, or a value/metadata whose MAC does not verify.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    fields = urllib.parse.parse_qs(body, keep_blank_values=True)
    raw = fields.get("payload", [""])[0]
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise InteractionError("no JSON `payload` field") from exc
    if not isinstance(payload, dict):
        raise InteractionError("`payload` is not an object")
    kind = payload.get("type")
    if kind == "block_actions":
        return _click(payload, signer)
    if kind == "view_submission":
        return _reason(payload, signer)
    return None


def _user(payload: dict[str, Any]) -> tuple[str, str, str]:
    user = payload.get("user") or {}
    team = payload.get("team") or {}
    user_id = str(user.get("id") or "")
    if not user_id:
        raise InteractionError("interaction without a user id")
    team_id = str(team.get("id") or user.get("team_id") or "")
    return user_id, str(user.get("username") or user.get("name") or ""), team_id


def _click(payload: dict[str, Any], signer: ButtonSigner) -> Click | None:
    ours = [
        a
        for a in payload.get("actions") or []
        if isinstance(a, dict) and a.get("action_id") in _ACTIONS
    ]
    if not ours:
        return None
    action = ours[0]
    request_id, sha = signer.parse(str(action.get("value") or ""))
    user_id, user_name, team_id = _user(payload)
    container = payload.get("container") or {}
    channel = payload.get("channel") or {}
    message = payload.get("message") or {}
    return Click(
        action=_ACTIONS[action["action_id"]],
        request_id=request_id,
        sha=sha,
        user_id=user_id,
        user_name=user_name,
        team_id=team_id,
        channel_id=str(channel.get("id") or container.get("channel_id") or ""),
        message_ts=str(container.get("message_ts") or message.get("ts") or ""),
        trigger_id=str(payload.get("trigger_id") or ""),
        response_url=str(payload.get("response_url") or ""),
    )


def _reason(
    payload: dict[str, Any], signer: ButtonSigner
) -> RejectReason | BreakGlassReason | None:
    view = payload.get("view") or {}
    if view.get("callback_id") not in (REJECT_MODAL, BREAK_GLASS_MODAL):
        return None
    meta = signer.unseal(str(view.get("private_metadata") or ""))
    values = (view.get("state") or {}).get("values") or {}
    reason = ((values.get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}).get("value") or ""
    user_id, _name, team_id = _user(payload)
    # the sealed metadata names its modal: a reject's metadata cannot break glass
    kind = meta.get("kind", "reject")
    if (kind == "break-glass") != (view.get("callback_id") == BREAK_GLASS_MODAL):
        raise InteractionError("modal metadata belongs to another kind of modal")
    event = BreakGlassReason if kind == "break-glass" else RejectReason
    return event(
        request_id=meta["request"],
        sha=meta["sha"],
        reason=" ".join(str(reason).split()),
        user_id=user_id,
        team_id=team_id,
        channel_id=meta.get("channel", ""),
        message_ts=meta.get("ts", ""),
    )
