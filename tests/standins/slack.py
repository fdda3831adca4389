"""A local stand-in for the Slack Web API, reached by the real slack-sdk WebClient.

Serves `POST|GET /api/<method>` on 127.0.0.1 (a free port, uvicorn in a background
thread) with Slack's JSON shapes: `{"ok": true, ...}` or `{"ok": false, "error": ...}`
with HTTP 200, and HTTP 429 + `Retry-After` when rate limited. It records every call,
keeps the messages it was sent (so `chat.update` edits them), checks the bot token and a
few Block Kit limits (so a message Slack would refuse is refused here too), and lets
tests inject 429s and `plan_upgrade_required`.

    with SlackStandin.running() as slack:
        client = make_client("xoxb-test", slack.api_url)

The other way round, it builds what Slack sends the app: interaction payloads
(`block_actions`, `view_submission`), their form body (`form`) and the signed headers
(`signed_headers`, with slack-sdk's own signature code).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from standins import contract

TOKEN = "xoxb-standin-token"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    status: int = 200
    error: str | None = None


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0


@dataclass
class SlackState:
    token: str = TOKEN
    team_id: str = "T0CHANGEGATE"
    bot_user_id: str = "U0CGBOT"
    channels: set[str] = field(default_factory=lambda: {"C0APPROVALS", "C0DEPLOYS"})
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan_has_usergroups: bool = True


class SlackStandin:
    def __init__(self, state: SlackState | None = None) -> None:
        self.state = state or SlackState()
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self._rate_limits: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self.app = Starlette(
            routes=[Route("/api/{method}", self._endpoint, methods=["GET", "POST"])]
        )
        self.server: uvicorn.Server | None = None
        self.port = 0

    # -- test controls -------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 0) -> None:
        """The next `times` calls of `method` get 429 with `Retry-After: retry_after`."""
        with self._lock:
            self._rate_limits.setdefault(method, []).extend([retry_after] * times)

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.status == 200]

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            return self.messages[(channel, ts)]

    # -- server --------------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def running(cls, state: SlackState | None = None) -> Iterator[SlackStandin]:
        standin = cls(state)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        standin.port = sock.getsockname()[1]
        config = uvicorn.Config(standin.app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        standin.server = server
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("Slack stand-in did not start")
            time.sleep(0.01)
        try:
            yield standin
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()

    # -- the API -------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        args = await _arguments(request)
        with self._lock:
            pending = self._rate_limits.get(method)
            if pending:
                retry_after = pending.pop(0)
                self.calls.append(Call(method, args, status=429, error="ratelimited"))
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"},
                    status_code=429,
                    headers={"Retry-After": str(retry_after)},
                )
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() or str(args.get("token", ""))
        refused = contract.slack().problems(method, args)
        for problem in refused:
            contract.record(f"Slack stand-in: {problem}")
        if refused:
            body: dict[str, Any] = {"ok": False, "error": "invalid_arguments"}
        elif not token:
            body: dict[str, Any] = {"ok": False, "error": "not_authed"}
        elif token != self.state.token:
            body = {"ok": False, "error": "invalid_auth"}
        else:
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            body = handler(args) if handler else {"ok": False, "error": "unknown_method"}
        with self._lock:
            self.calls.append(Call(method, args, error=body.get("error")))
        return JSONResponse(body)

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.{next(self._ts):06d}"

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://changegate-test.slack.com/",
            "team": "changegate test",
            "user": "changegate",
            "team_id": self.state.team_id,
            "user_id": self.state.bot_user_id,
            "bot_id": "B0CGBOT",
        }

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if channel not in self.state.channels:
            return {"ok": False, "error": "channel_not_found"}
        blocks = _as_list(args.get("blocks"))
        if not args.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        problem = _block_problem(blocks)
        if problem:
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        ts = self._next_ts()
        message = Message(channel, ts, str(args.get("text") or ""), blocks, args.get("thread_ts"))
        with self._lock:
            self.messages[(channel, ts)] = message
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {
                "type": "message",
                "user": self.state.bot_user_id,
                "text": message.text,
                "ts": ts,
                "blocks": blocks,
            },
        }

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        if channel not in self.state.channels:
            return {"ok": False, "error": "channel_not_found"}
        with self._lock:
            message = self.messages.get((channel, ts))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        blocks = _as_list(args.get("blocks"))
        problem = _block_problem(blocks)
        if problem:
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        with self._lock:
            message.text = str(args.get("text") or message.text)
            message.blocks = blocks
            message.edits += 1
        return {"ok": True, "channel": channel, "ts": ts, "text": message.text}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if channel not in self.state.channels:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_found"}
        with self._lock:
            self.ephemerals.append(dict(args))
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        if not isinstance(view, dict) or view.get("type") != "modal":
            return {"ok": False, "error": "invalid_arguments"}
        if len(str(view.get("private_metadata", ""))) > 3000:
            return {"ok": False, "error": "invalid_arguments"}
        if len(view.get("title", {}).get("text", "")) > 24:
            return {"ok": False, "error": "invalid_arguments"}
        view_id = f"V{next(self._ts):08d}"
        with self._lock:
            self.views.append({"id": view_id, "trigger_id": args["trigger_id"], **view})
        return {"ok": True, "view": {"id": view_id, **view}}

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.state.plan_has_usergroups:
            return {"ok": False, "error": "plan_upgrade_required"}
        group = str(args.get("usergroup") or "")
        if group not in self.state.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.state.usergroups[group])}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.state.users.get(str(args.get("user") or ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}


# -- what Slack sends the app ------------------------------------------------------------
#: the `trigger_id` and `action_ts` of the `block_actions` example in Slack's reference
REFERENCE_TRIGGER_ID = "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3"
REFERENCE_ACTION_TS = "1548426417.840180"


def signed_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send with `body` at `timestamp` (default: now), signed with the
    app's signing `secret` by slack-sdk's own code."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def form(payload: dict[str, Any]) -> bytes:
    """An interaction request's body: the payload as JSON in the `payload` form field."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def block_actions(
    *,
    user: str,
    value: str,
    action_id: str,
    channel: str = "C0APPROVALS",
    ts: str = "1.000100",
    trigger_id: str = REFERENCE_TRIGGER_ID,
    action_ts: str = REFERENCE_ACTION_TS,
    style: str | None = "primary",
) -> dict[str, Any]:
    """A click on a button of message `ts`, shaped like the `block_actions` example in
    Slack's interaction payload reference (`style=None`: a button without a style)."""
    button: dict[str, Any] = {
        "action_id": action_id,
        "block_id": "changegate:x",
        "text": {"type": "plain_text", "text": "Approve", "emoji": True},
        "value": value,
    }
    if style is not None:
        button["style"] = style
    return {
        **_interaction("block_actions", user),
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": ts, "text": "Approval needed", "blocks": []},
        "response_url": "https://hooks.slack.com/actions/A0CHANGEGATE/1232321423432/D09sSasd",
        "actions": [{**button, "type": "button", "action_ts": action_ts}],
    }


def view_submission(
    *,
    user: str,
    private_metadata: str,
    reason: str,
    callback_id: str = "changegate_reject_reason",
) -> dict[str, Any]:
    """A submitted reason modal, shaped like Slack's `view_submission` reference payload."""
    return {
        **_interaction("view_submission", user),
        "trigger_id": "12466734323.1395872398.f4f7b5a0a2c1a0",
        "view": {
            "id": "VNHU13V36",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {
                "values": {
                    "reason": {"reason_input": {"type": "plain_text_input", "value": reason}}
                }
            },
            "hash": "156663117.cd33ad1f",
        },
        "response_urls": [],
    }


def _interaction(kind: str, user: str) -> dict[str, Any]:
    """What every interaction payload starts with: its type, the team, the user, the app."""
    return {
        "type": kind,
        "team": {"id": "T0CHANGEGATE", "domain": "changegate-test"},
        "user": {
            "id": user,
            "username": user.lower(),
            "name": user.lower(),
            "team_id": "T0CHANGEGATE",
        },
        "api_app_id": "A0CHANGEGATE",
        "token": "verification-token-unused",
    }


async def _arguments(request: Request) -> dict[str, Any]:
    """Slack takes arguments as a query string, a form, or JSON; slack-sdk uses all three."""
    args: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if raw and content_type.startswith("application/json"):
        args.update(json.loads(raw))
    elif raw:  # form-encoded (starlette's form parser needs python-multipart; not here)
        args.update(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    return args


def _as_list(blocks: Any) -> list[dict[str, Any]]:
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return list(blocks or [])


def _block_problem(blocks: list[dict[str, Any]]) -> str | None:
    """A few of Block Kit's documented limits, enough to catch a message Slack refuses."""
    if len(blocks) > 50:
        return "must provide no more than 50 items [json-pointer:/blocks]"
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header" and len(block["text"]["text"]) > 150:
            return f"must be less than 151 characters [json-pointer:/blocks/{i}/text/text]"
        if kind == "section" and len(block.get("text", {}).get("text", "")) > 3000:
            return f"must be less than 3001 characters [json-pointer:/blocks/{i}/text/text]"
        if len(str(block.get("block_id", ""))) > 255:
            return f"must be less than 256 characters [json-pointer:/blocks/{i}/block_id]"
        for j, element in enumerate(block.get("elements", []) if kind == "actions" else []):
            if len(str(element.get("value", ""))) > 2000:
                return f"must be less than 2001 characters [json-pointer:/blocks/{i}/elements/{j}/value]"
            if len(str(element.get("action_id", ""))) > 255:
                return f"must be less than 256 characters [json-pointer:/blocks/{i}/elements/{j}/action_id]"
    return None
