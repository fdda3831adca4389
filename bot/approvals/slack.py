"""Slack: Block Kit approval requests, signed interactions, user groups (slack-sdk).

Everything Slack-shaped lives here: the message for a request (and its updates), the
reject-reason modal, parsing `block_actions` / `view_submission` payloads into typed
events, checking request signatures (5-minute window, replays refused), and resolving
Slack user groups for `bot.policy.approvers.Directory`.

Button values carry the request id and the SHA, MAC'd with a key derived from the signing
secret: a value cannot be made up or moved to another request or commit, even by someone
who can craft an interaction. The WebClient retries rate limits and connection errors,
which sleeps: call it from workers, never from a request handler.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.signature import Clock, SignatureVerifier
from sqlmodel import Session

from bot.approvals.models import ApprovalRequestRecord, RequestKind, RequestState
from bot.change import Finding
from bot.policy.approvers import Directory
from bot.policy.schema import Group, Policy

log = logging.getLogger(__name__)

APPROVE_ACTION = "changegate_approve"
REJECT_ACTION = "changegate_reject"
REJECT_MODAL = "changegate_reject_reason"
BREAK_GLASS_ACTION = "changegate_break_glass"
BREAK_GLASS_MODAL = "changegate_break_glass_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
SIGNATURE_WINDOW_SECONDS = 60 * 5
MAX_FINDINGS_SHOWN = 10


class SlackError(Exception):
    """A Slack call failed in a way an admin must fix; the message says how."""


class UserGroupsUnavailable(SlackError):
    """The workspace cannot resolve user groups (plan, scope, or unknown id)."""


class InteractionError(ValueError):
    """An interaction payload that is malformed or carries a forged value."""


def make_client(
    token: str, base_url: str = "https://slack.com/api/", *, timeout: int = 10, retries: int = 3
) -> WebClient:
    """A WebClient that honours 429 Retry-After and retries dropped connections."""
    if not base_url.endswith("/"):
        base_url += "/"
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=retries),
            RateLimitErrorRetryHandler(max_retry_count=retries),
        ],
    )


# -- unforgeable button values ---------------------------------------------------------


class ButtonSigner:
    """MACs `(request id, sha)` into button values and modal metadata."""

    def __init__(self, signing_secret: str) -> None:
        if not signing_secret:
            raise ValueError("a signing secret is needed to sign button values")
        self._key = hmac.new(
            signing_secret.encode(), b"changegate-button-v1", hashlib.sha256
        ).digest()

    def _mac(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def value(self, request_id: str, sha: str) -> str:
        return f"{request_id}.{sha}.{self._mac(f'{request_id}.{sha}')}"

    def parse(self, value: str) -> tuple[str, str]:
        """(request id, sha) of a value this signer made; InteractionError otherwise."""
        parts = value.split(".")
        if len(parts) != 3 or not all(parts):
            raise InteractionError("button value is not one of ours")
        request_id, sha, mac = parts
        if not hmac.compare_digest(mac, self._mac(f"{request_id}.{sha}")):
            raise InteractionError("button value has a bad signature (forged or altered)")
        return request_id, sha

    def seal(self, data: dict[str, str]) -> str:
        """JSON plus a MAC, for a modal's `private_metadata` (max 3000 characters)."""
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return json.dumps({"d": text, "m": self._mac(text)}, separators=(",", ":"))

    def unseal(self, sealed: str) -> dict[str, str]:
        try:
            outer = json.loads(sealed)
            text, mac = outer["d"], outer["m"]
        except (ValueError, TypeError, KeyError) as exc:
            raise InteractionError("modal metadata is not one of ours") from exc
        if not isinstance(text, str) or not hmac.compare_digest(str(mac), self._mac(text)):
            raise InteractionError("modal metadata has a bad signature (forged or altered)")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise InteractionError("modal metadata is not an object")
        return {str(k): str(v) for k, v in data.items()}


# -- request signatures ----------------------------------------------------------------


class RequestVerifier:
    """Slack's `v0` signature over the raw body, a 5-minute window, and no replays.

    Replays are caught by remembering each accepted signature until it falls out of the
    window (in this process); across processes the inbox deduplicates on
    `delivery_id(headers)`, which is derived from the same signature.
    """

    def __init__(self, signing_secret: str, *, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._verifier = SignatureVerifier(signing_secret, clock=self.clock)
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def problem(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """None when the request is authentic and fresh, else why it is not."""
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp = lower.get("x-slack-request-timestamp")
        signature = lower.get("x-slack-signature")
        if not timestamp or not signature:
            return "missing Slack signature headers"
        try:
            sent = int(timestamp)
        except ValueError:
            return "bad Slack request timestamp"
        now = self.clock.now()
        if abs(now - sent) > SIGNATURE_WINDOW_SECONDS:
            return "stale Slack request (more than 5 minutes old)"
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return "bad Slack signature"
        with self._lock:
            for key, until in list(self._seen.items()):
                if until < now:
                    del self._seen[key]
            if signature in self._seen:
                return "replayed Slack request"
            self._seen[signature] = sent + SIGNATURE_WINDOW_SECONDS
        return None

    def is_valid(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return self.problem(body, headers) is None


def delivery_id(headers: Mapping[str, str]) -> str:
    """An inbox key for an interaction: the same request sent twice gets the same key."""
    lower = {k.lower(): v for k, v in headers.items()}
    signature = lower.get("x-slack-signature", "")
    return hashlib.sha256(signature.encode()).hexdigest()[:40]


# -- interaction payloads --------------------------------------------------------------


@dataclass(frozen=True)
class Click:
    """An Approve or Reject button pressed on a request message."""

    action: Literal["approve", "reject", "break-glass"]
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


_ACTIONS: dict[str, Literal["approve", "reject", "break-glass"]] = {
    APPROVE_ACTION: "approve",
    REJECT_ACTION: "reject",
    BREAK_GLASS_ACTION: "break-glass",
}


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


# -- messages ----------------------------------------------------------------------


def findings_detail(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """What a request's message lists, stored in `details["findings"]` when it opens."""
    return [
        {"rule": f.rule, "path": f.path, "line": f.line, "message": f.message}
        for f in sorted(findings, key=Finding.sort_key)
    ]


def approver_mentions(group: Group | None) -> list[str]:
    """Slack mentions of who may approve: users `<@U…>`, user groups `<!subteam^S…>`."""
    if group is None:
        return []
    return [
        f"<!subteam^{entry}>" if is_usergroup(entry) else f"<@{entry}>" for entry in group.slack
    ]


def is_usergroup(entry: str) -> bool:
    return entry.startswith("S") and entry[1:].isalnum()


def escape(text: str) -> str:
    """Text written by users (titles, reasons, paths, environment names) as Slack mrkdwn
    shows it: only &, < and > are escaped, and that is enough to keep `<!channel>` from
    pinging and `<url|text>` from disguising a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str | None, text: str) -> str:
    """`<url|text>` for a URL that cannot break out of the link; else the text alone."""
    if not url or not re.fullmatch(r"https?://[^\s<>|]+", url):
        return text
    return f"<{url.replace('&', '&amp;')}|{text}>"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _date(when: dt.datetime) -> str:
    """A Slack date token: shown in the reader's own time zone, with a UTC fallback."""
    aware = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when
    return f"<!date^{int(aware.timestamp())}^{{date_short_pretty}} {{time}}|{aware:%Y-%m-%d %H:%M} UTC>"


def _headline(request: ApprovalRequestRecord) -> str:
    where = request.repo + (f" #{request.number}" if request.number else "")
    if request.kind == RequestKind.DEPLOY:
        return f"Deploy approval needed: {request.repo} → {request.environment}"
    if request.kind == RequestKind.RETRO_REVIEW:
        return f"Retro-review after break-glass: {where}"
    return f"Approval needed: {where}"


def request_blocks(
    request: ApprovalRequestRecord,
    *,
    group: Group | None,
    signer: ButtonSigner | None,
    break_glass: bool = False,
) -> list[dict[str, Any]]:
    """The message body; with `signer` None (decided requests) there are no buttons.
    `break_glass` adds a third button for the emergency group (not on retro-reviews)."""
    title = escape(request.title or request.subject)
    link = _link(request.url, title)
    author = (
        (f"<@{request.author}>" if request.author_system == "slack" else escape(request.author))
        if request.author
        else "unknown"
    )
    role = "started by" if request.kind == RequestKind.DEPLOY else "by"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(_headline(request), 150)}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(
                    f"*{link}*\n{escape(request.repo)} · {role} {author} · "
                    f"commit `{request.sha[:7]}`",
                    3000,
                ),
            },
        },
    ]
    reason = request.details.get("break_glass_reason")
    if reason:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _clip(f"*Break-glass reason:* {escape(reason)}", 3000),
                },
            }
        )
    findings = request.details.get("findings") or []
    lines: list[str] = []
    budget = 3000 - 100  # room for the heading and the "…and N more" line
    for item in findings[:MAX_FINDINGS_SHOWN]:
        where = f"{item['path']}:{item['line']}" if item.get("line") else str(item["path"])
        line = _clip(f"• `{escape(item['rule'])}` {escape(where)}: {escape(item['message'])}", 400)
        if len(line) + 1 > budget:
            break
        lines.append(line)
        budget -= len(line) + 1
    if len(findings) > len(lines):
        lines.append(f"…and {len(findings) - len(lines)} more")
    if not findings:
        lines = [f"• `{escape(rule)}`" for rule in request.rules]
    blocks.append(
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip("*Needs approval:*\n" + "\n".join(lines), 3000),
            },
        }
    )
    mentions = ", ".join(approver_mentions(group)) or f"members of {request.group_name}"
    need = f"{request.min_approvals} of" if request.min_approvals > 1 else "one of"
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _clip(
                        f"Who can approve: {need} {mentions} ({escape(request.group_name)}) · "
                        f"expires {_date(request.expires_at)}",
                        3000,
                    ),
                }
            ],
        }
    )
    if signer is not None and request.state == RequestState.PENDING:
        value = signer.value(request.id, request.sha)
        blocks.append(
            {
                "type": "actions",
                "block_id": f"changegate:{request.id}:{request.sha[:12]}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE_ACTION,
                        "text": {"type": "plain_text", "text": "Approve"},
                        "style": "primary",
                        "value": value,
                    },
                    {
                        "type": "button",
                        "action_id": REJECT_ACTION,
                        "text": {"type": "plain_text", "text": "Reject"},
                        "style": "danger",
                        "value": value,
                    },
                ],
            }
        )
        if break_glass and request.kind != RequestKind.RETRO_REVIEW:
            blocks[-1]["elements"].append(
                {
                    "type": "button",
                    "action_id": BREAK_GLASS_ACTION,
                    "text": {"type": "plain_text", "text": "Break glass"},
                    "value": value,
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Break glass?"},
                        "text": {
                            "type": "plain_text",
                            "text": "Override this request now. It is announced, audited "
                            "and needs a retro-review.",
                        },
                        "confirm": {"type": "plain_text", "text": "Continue"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                }
            )
    else:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _outcome(request)}]}
        )
    return blocks


_ICONS = {
    RequestState.APPROVED: ":white_check_mark:",
    RequestState.REJECTED: ":x:",
    RequestState.EXPIRED: ":hourglass:",
    RequestState.SUPERSEDED: ":fast_forward:",
    RequestState.PENDING: ":hourglass_flowing_sand:",
}


def _outcome(request: ApprovalRequestRecord) -> str:
    """Who decided and when, then the reason as plain (escaped) text: a reason is written
    by a user and must not ping channels or fake links."""
    state = RequestState(request.state)
    text = f"{_ICONS[state]} *{str(state).capitalize()}*"
    if request.decided_by and request.decided_by_system == "slack":
        text += f" by <@{request.decided_by}>"
    if request.decided_at:
        text += f" · {_date(request.decided_at)}"
    if request.state_reason:
        text += f"\n{escape(request.state_reason)}"
    return _clip(text, 3000)


def request_text(request: ApprovalRequestRecord) -> str:
    """The notification fallback text (mrkdwn too: escaped)."""
    return escape(f"{_headline(request)} at {request.sha[:7]} ({request.state})")


def break_glass_modal(
    signer: ButtonSigner, request_id: str, sha: str, channel: str, ts: str
) -> dict[str, Any]:
    """Asks the emergency responder why: the reason is announced and audited."""
    modal = reject_modal(signer, request_id, sha, channel, ts)
    modal["callback_id"] = BREAK_GLASS_MODAL
    modal["title"] = {"type": "plain_text", "text": "Break glass"}
    modal["submit"] = {"type": "plain_text", "text": "Override"}
    modal["private_metadata"] = signer.seal(
        {"request": request_id, "sha": sha, "channel": channel, "ts": ts, "kind": "break-glass"}
    )
    modal["blocks"][0]["label"]["text"] = f"Why override {sha[:7]} now?"
    modal["blocks"][0]["element"]["min_length"] = 10
    return modal


def reject_modal(
    signer: ButtonSigner, request_id: str, sha: str, channel: str, ts: str
) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": REJECT_MODAL,
        "title": {"type": "plain_text", "text": "Reject change"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": signer.seal(
            {"request": request_id, "sha": sha, "channel": channel, "ts": ts}
        ),
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": f"Why reject {sha[:7]}?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "min_length": 3,
                    "max_length": 2000,
                },
            }
        ],
    }


# -- talking to Slack -------------------------------------------------------------------


class SlackNotifier:
    """Posts and updates request messages, replies to clickers, opens the reason modal."""

    def __init__(
        self, client: WebClient, signer: ButtonSigner, *, break_glass: bool = False
    ) -> None:
        self.client = client
        self.signer = signer
        self.break_glass = break_glass  # offer the Break glass button on open requests
        self._team_id: str | None = None

    def team_id(self) -> str:
        """The workspace the bot is installed in (`auth.test`), asked once: interactions
        from any other workspace are refused. SlackError if Slack cannot say."""
        if self._team_id is None:
            team = str(self._call(self.client.auth_test).get("team_id") or "")
            if not team:
                raise SlackError("Slack auth.test named no team_id")
            self._team_id = team
        return self._team_id

    def post_request(
        self, request: ApprovalRequestRecord, group: Group | None, channel: str
    ) -> tuple[str, str]:
        """chat.postMessage; returns (channel id, ts) to store with the request."""
        response = self._call(
            self.client.chat_postMessage,
            channel=channel,
            text=request_text(request),
            blocks=request_blocks(
                request, group=group, signer=self.signer, break_glass=self.break_glass
            ),
            unfurl_links=False,
        )
        return str(response["channel"]), str(response["ts"])

    def update_request(self, request: ApprovalRequestRecord, group: Group | None) -> None:
        """chat.update after a decision: who decided and when; buttons gone unless pending."""
        if not request.channel or not request.message_ts:
            return
        self._call(
            self.client.chat_update,
            channel=request.channel,
            ts=request.message_ts,
            text=request_text(request),
            blocks=request_blocks(
                request, group=group, signer=self.signer, break_glass=self.break_glass
            ),
        )

    def remind(self, request: ApprovalRequestRecord, group: Group | None) -> None:
        """A threaded nudge under the request, mentioning who can approve."""
        if not request.channel or not request.message_ts:
            return
        mentions = ", ".join(approver_mentions(group)) or request.group_name
        self._call(
            self.client.chat_postMessage,
            channel=request.channel,
            thread_ts=request.message_ts,
            reply_broadcast=True,
            text=f"Reminder: {mentions}, this request expires {_date(request.expires_at)}.",
        )

    def reply(self, channel: str, user: str, text: str) -> None:
        """An ephemeral answer only the clicker sees (a refusal, a confirmation)."""
        self._call(self.client.chat_postEphemeral, channel=channel, user=user, text=escape(text))

    def announce(self, channel: str, text: str, *, thread_ts: str | None = None) -> str:
        response = self._call(
            self.client.chat_postMessage, channel=channel, text=text, thread_ts=thread_ts
        )
        return str(response["ts"])

    def open_reject_modal(self, click: Click) -> None:
        self._call(
            self.client.views_open,
            trigger_id=click.trigger_id,
            view=reject_modal(
                self.signer, click.request_id, click.sha, click.channel_id, click.message_ts
            ),
        )

    def open_break_glass_modal(self, click: Click) -> None:
        self._call(
            self.client.views_open,
            trigger_id=click.trigger_id,
            view=break_glass_modal(
                self.signer, click.request_id, click.sha, click.channel_id, click.message_ts
            ),
        )

    @staticmethod
    def _call(method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise SlackError(f"Slack {error or exc}") from exc


# -- user groups ----------------------------------------------------------------------


class UserGroupResolver:
    """Members of Slack user groups (`usergroups.users.list`), and with `match_email` the
    e-mail of Slack users (`users.info`), each cached for `ttl` seconds.

    Failures are cached too, so a workspace without user groups is not asked on every
    click. Needs the `usergroups:read` scope, and `users:read.email` to match by e-mail.
    """

    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        match_email: bool = False,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self.match_email = match_email
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}  # (what, id) -> expiry, value
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, str], fetch: Callable[[], Any]) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = fetch()
        with self._lock:
            self._cache[key] = (now + self.ttl, value)
        return value

    def email(self, system: str, user: str) -> str | None:
        """A Slack user's e-mail, cached; None for other systems and unknown users."""
        if system != "slack":
            return None
        return cast(str | None, self._cached(("email", user), lambda: email_of(self.client, user)))

    def members(self, usergroup: str) -> frozenset[str]:
        result = self._cached(("usergroup", usergroup), lambda: self._fetch_members(usergroup))
        if isinstance(result, UserGroupsUnavailable):
            raise result
        return cast(frozenset[str], result)

    def _fetch_members(self, usergroup: str) -> frozenset[str] | UserGroupsUnavailable:
        try:
            response = self.client.usergroups_users_list(usergroup=usergroup)
        except SlackApiError as exc:
            return _group_error(usergroup, exc)
        return frozenset(str(u) for u in response.get("users") or [])

    def directory(self, policy: Policy, groups: Sequence[str] | None = None) -> Directory:
        """A Directory expanding every user group named in the given groups' `slack:`."""
        members: dict[str, frozenset[str]] = {}
        for name in groups if groups is not None else list(policy.groups):
            group = policy.groups.get(name)
            for entry in group.slack if group else []:
                if is_usergroup(entry) and entry not in members:
                    members[entry] = self.members(entry)
        return Directory(members=members, email_of=self.email if self.match_email else None)


def _group_error(usergroup: str, exc: SlackApiError) -> UserGroupsUnavailable:
    error = exc.response.get("error") if exc.response is not None else None
    if error == "plan_upgrade_required":
        return UserGroupsUnavailable(
            f"Slack user group {usergroup} cannot be resolved: this workspace's plan has no "
            "user groups (plan_upgrade_required). List Slack user ids (U…) in the policy's "
            "groups instead."
        )
    if error == "missing_scope":
        return UserGroupsUnavailable(
            f"Slack user group {usergroup} cannot be resolved: the bot token lacks the "
            "usergroups:read scope."
        )
    if error == "no_such_subteam":
        return UserGroupsUnavailable(f"Slack user group {usergroup} does not exist.")
    return UserGroupsUnavailable(f"Slack user group {usergroup} cannot be resolved: {error}")


def email_of(client: WebClient, user_id: str) -> str | None:
    """A Slack user's e-mail (`users.info`, needs users:read.email), for matching people
    across systems when the policy's `people:` does not list them."""
    try:
        response = client.users_info(user=user_id)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error == "missing_scope":
            log.warning("matching people by e-mail needs the users:read.email scope")
        return None
    profile = (response.get("user") or {}).get("profile") or {}
    email = profile.get("email")
    return str(email).lower() if email else None


# -- processing a stored interaction (worker side) --------------------------------------


@dataclass(frozen=True)
class Handled:
    """What processing one interaction did; `settled` means: re-evaluate the check."""

    accepted: bool
    message: str
    request: ApprovalRequestRecord | None
    settled: bool = False


def handle_event(
    session: Session,
    policy: Policy,
    event: Click | RejectReason | BreakGlassReason,
    *,
    notifier: SlackNotifier,
    resolver: UserGroupResolver | None = None,
    delivery_id: str | None = None,
    now: dt.datetime | None = None,
) -> Handled:
    """Apply a click or a submitted reject reason to its request, and tell Slack.

    Approve: recorded or refused (an ephemeral reply says why). Reject: the reason modal is
    opened if the clicker may decide; its submission records the reject. A decided request
    has its message updated: who decided, when, and no buttons. Note that a `trigger_id`
    lives 3 seconds: a worker that picks the click up later cannot open the modal.
    """
    from bot.approvals import workflow

    request = workflow.get_request(session, event.request_id)
    if request is None:
        return Handled(False, "This approval request does not exist (any more).", None)
    if isinstance(event, BreakGlassReason) or (
        isinstance(event, Click) and event.action == "break-glass"
    ):  # never an approval: bot.approvals.service handles break-glass
        return Handled(False, "break-glass is not a decision on the request", request)
    group = policy.groups.get(request.group_name)
    actor = ("slack", event.user_id)
    channel = event.channel_id or request.channel or ""
    try:
        directory = resolver.directory(policy, [request.group_name]) if resolver else Directory()
    except UserGroupsUnavailable as exc:
        notifier.reply(channel, event.user_id, str(exc))
        return Handled(False, str(exc), request)
    if isinstance(event, Click) and event.action == "reject":
        why = workflow.refusal(
            session, policy, request, event.sha, actor, directory=directory, now=now
        )
        if why is not None:
            notifier.reply(channel, event.user_id, why)
            return Handled(False, why, request)
        notifier.open_reject_modal(event)
        return Handled(True, "asked for a reason", request)
    outcome = workflow.record_decision(
        session,
        policy,
        event.request_id,
        event.sha,
        actor,
        "approve" if isinstance(event, Click) else "reject",
        event.reason if isinstance(event, RejectReason) else "",
        directory=directory,
        delivery_id=delivery_id,
        now=now,
    )
    if outcome.settled and outcome.request is not None:
        notifier.update_request(outcome.request, group)
    elif (
        not outcome.accepted
        and outcome.request is not None
        and outcome.request.state == RequestState.EXPIRED
    ):
        notifier.update_request(outcome.request, group)  # it may have expired just now
    if not outcome.accepted or not outcome.settled:
        notifier.reply(channel, event.user_id, outcome.message)
    return Handled(outcome.accepted, outcome.message, outcome.request, outcome.settled)
