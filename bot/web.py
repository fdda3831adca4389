"""The ack path: verify, store, answer; plus health, readiness and metrics.

A request body is read (at most `max_body_bytes`); its signature is checked in constant
time and its JSON parsed once, on the event loop (in the threadpool for big bodies and
Slack); then `inbox.Writer` commits it, together with the deliveries that arrived meanwhile
(group commit), and only then is the request answered. No policy is evaluated and no forge
API is called on this path: that is the workers' job. The one exception is a Slack click
that asks for a reason: its modal must open within Slack's 3 seconds.

Status codes: 202 stored; 200 duplicate delivery id (or ping, or a Slack click, which
must be answered 200); 400 malformed; 401 bad or missing signature, or no secret
configured (never skip the check); 413 too large (Slack interactions over 64 KB, webhooks
over 25 MB); 503 the database cannot store it, or too many unverified bytes are in flight
(the sender retries; nothing is accepted that is not stored). A request without a
signature is refused before its body is read, and bodies being read count against one
shared budget until they are verified. The GitHub webhook secret (it may be registered
while the server runs) is read once per request.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from bot import inbox, metrics, store
from bot.forges import Delivery, Forge
from bot.governor import PolicyHolder
from bot.governor.click import Clicks
from bot.settings import Settings, secret
from bot.setup import stored as stored_app
from bot.slack.signing import RequestVerifier
from bot.slack.signing import delivery_id as slack_delivery_id

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 255
#: Bodies up to this size are verified on the event loop (an HMAC and a JSON parse take
#: about 0.1 ms for a typical 25 KB webhook: less than a hop to a thread); bigger ones in
#: the threadpool, so that a 25 MB body never stalls other requests.
INLINE_CHECK_BYTES = 256 * 1024


#: Checks a body against its headers: the delivery, or the answer that refuses it.
Verify = Callable[[bytes, Mapping[str, str]], "Delivery | Response"]


class TooLarge(Exception):
    pass


class Busy(Exception):
    """The shared budget of unverified bytes is spent: answer 503, the sender retries."""


class BodyBudget:
    """Bytes of request bodies held before their signature is checked, across every
    request (used on the event loop only). Unsigned requests are refused before their body
    is read; this bounds what forged signatures can make the server hold."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        if self.used + size > self.limit:
            raise Busy
        self.used += size

    def give(self, size: int) -> None:
        self.used = max(0, self.used - size)


async def read_body(
    request: Request,
    limit: int,
    budget: BodyBudget | None = None,
    mac: hmac.HMAC | None = None,
) -> bytes:
    """The raw body, refusing early on Content-Length and again while counting bytes;
    each chunk is charged to `budget` (the caller gives `len(body)` back once verified,
    and on an error everything read so far is given back here)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge
            if budget is not None:
                budget.take(len(chunk))
            if mac is not None:  # the signature is computed as the body streams in
                mac.update(chunk)
            chunks.append(chunk)
    except BaseException:
        if budget is not None:
            budget.give(sum(len(c) for c in chunks))
        raise
    return b"".join(chunks)


def _answer(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": message, **extra}, status_code=status)


class Ingress:
    """The webhook endpoints of one app: settings, the store, and who to wake."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        forges: Mapping[str, Forge],
        policy: PolicyHolder,
        on_stored: Callable[[], None] | None = None,
        slack: Clicks | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.forges = forges
        self.policy = policy
        self.on_stored = on_stored
        self.approvals = slack  # Slack fully configured: subjects of clicks, reason modals
        self.writer = inbox.Writer(engine)  # stopped by the app's lifespan
        self.budget = BodyBudget(settings.unverified_body_bytes)
        key = secret(settings.slack_signing_secret)
        # one per app: it remembers the signatures it accepted, to refuse replays
        self.slack_verifier = RequestVerifier(key) if key else None

    # -- endpoints -------------------------------------------------------------------
    async def github(self, request: Request) -> Response:
        return await self._receive(request, "github", None)

    async def gitlab(self, request: Request) -> Response:
        return await self._receive(request, "gitlab", self._verify_gitlab)

    async def slack(self, request: Request) -> Response:
        return await self._receive(request, "slack", self._verify_slack)

    async def healthz(self, _request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(self, _request: Request) -> Response:
        return await run_in_threadpool(self._readiness)

    async def metrics(self, _request: Request) -> Response:
        return await run_in_threadpool(self._metrics)

    # -- the ack path ----------------------------------------------------------------
    async def _receive(
        self,
        request: Request,
        forge: str,
        verify: Verify | None,
    ) -> Response:
        """`verify` None: GitHub, whose signature is the HMAC computed while reading."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        # read once: the App may be registered while the server runs
        key = secret(stored_app.webhook_secret(self.settings)) if forge == "github" else None
        unsigned = self._unsigned(forge, headers, key)
        if unsigned is not None:  # refused before a byte of the body is read
            return unsigned
        limit = (
            self.settings.slack_max_body_bytes if forge == "slack" else self.settings.max_body_bytes
        )
        mac = hmac.new(key.encode(), digestmod="sha256") if key else None
        try:
            body = await read_body(request, limit, self.budget, mac)
        except TooLarge:
            metrics.REJECTED.labels(forge, "too-large").inc()
            return _answer(413, f"payload over {limit} bytes")
        except Busy:
            metrics.REJECTED.labels(forge, "busy").inc()
            return JSONResponse(
                {"status": "too many unverified bodies in flight, retry later"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        if verify is None:
            assert mac is not None  # `_unsigned` refused GitHub deliveries without a secret
            verify = functools.partial(_verify_github_digest, mac.hexdigest())
        try:
            if forge == "slack" or len(body) > INLINE_CHECK_BYTES:
                # Slack subjects are read from the database; big bodies take a while to parse
                checked = await run_in_threadpool(self._check, forge, verify, body, headers)
            else:
                checked = self._check(forge, verify, body, headers)
        finally:
            self.budget.give(len(body))  # verified (or refused): no longer unverified
        if isinstance(checked, Response):
            return checked
        delivery, subject = checked
        refused = await self._store(forge, delivery, subject)
        if refused is not None:  # a database error, or a duplicate
            return refused
        if forge == "slack":
            if self.approvals is not None:
                # a reason modal must open within the click's 3-second trigger_id
                await run_in_threadpool(self._open_modal, delivery)
            return Response(status_code=200)
        if delivery.event == "ping":
            return _answer(200, "pong", delivery=delivery.id)
        return _answer(202, "queued", delivery=delivery.id)

    async def _store(self, forge: str, delivery: Delivery, subject: str) -> Response | None:
        """Commit the delivery (group commit) and wake the workers; the answer that ends
        the request here (503: not stored; 200: a duplicate), or None once it is stored."""
        with metrics.delivery_context(inbox.key_of(forge, delivery.id)):
            try:
                stored = await asyncio.wrap_future(self.writer.submit(delivery, subject))
            except SQLAlchemyError as exc:
                metrics.REJECTED.labels(forge, "database").inc()
                log.error("cannot store delivery: %s", exc.__class__.__name__)
                return JSONResponse(
                    {"status": "database unavailable, retry later"},
                    status_code=503,
                    headers={"Retry-After": "5"},
                )
            if self.on_stored is not None:
                self.on_stored()
            if not stored:
                metrics.DUPLICATES.labels(forge).inc()
                log.info("duplicate %s delivery %s: not processed again", forge, delivery.event)
                return _answer(200, "duplicate", delivery=delivery.id)
            metrics.RECEIVED.labels(forge, delivery.event).inc()
            # debug: a JSON log line costs about 0.13 ms, a tenth of the ack path; each
            # delivery is logged with its id when a worker processes it
            log.debug("stored %s %s", forge, delivery.event, extra={"subject": subject})
        return None

    def _check(
        self,
        forge: str,
        verify: Verify,
        body: bytes,
        headers: Mapping[str, str],
    ) -> tuple[Delivery, str] | Response:
        """Verified delivery and its subject, or the answer that refuses it."""
        checked = verify(body, headers)
        if isinstance(checked, Response):
            return checked
        with metrics.delivery_context(inbox.key_of(forge, checked.id)):
            return checked, self._subject(checked)

    def _open_modal(self, delivery: Delivery) -> None:
        assert self.approvals is not None
        try:
            self.approvals.fast_path(delivery.body)
        except Exception as exc:  # noqa: BLE001 - the click is stored: answer 200
            log.warning("could not open the Slack modal: %s", exc)

    def _subject(self, delivery: Delivery) -> str:
        if delivery.forge == "slack":  # serialized with its pull request or deploy
            try:
                return self.approvals.inbox_subject(delivery.body)[:500] if self.approvals else ""
            except Exception:  # noqa: BLE001 - an unreadable click is not serialized
                log.warning("could not read the subject of a Slack interaction")
                return ""
        forge = self.forges.get(delivery.forge)
        if forge is None:
            return ""
        try:
            return forge.subject_of(delivery)[:500]
        except Exception:  # noqa: BLE001 - a payload the forge cannot read is not serialized
            log.warning("could not read the subject of a %s delivery", delivery.forge)
            return ""

    # -- per-forge verification ------------------------------------------------------
    def _unsigned(
        self, forge: str, headers: Mapping[str, str], github_key: str | None
    ) -> Response | None:
        """401 for what the headers alone show cannot be authentic (no secret configured,
        no signature, a wrong GitLab token), so its body is never read."""
        if forge == "github":
            if not github_key:
                metrics.REJECTED.labels("github", "no-secret").inc()
                return _answer(401, "GitHub webhook secret not configured: refusing")
            if not headers.get("x-hub-signature-256"):
                metrics.REJECTED.labels("github", "signature").inc()
                return _answer(401, "bad or missing X-Hub-Signature-256")
        elif forge == "gitlab":
            return self._gitlab_token(headers)
        elif forge == "slack":
            if self.slack_verifier is None:
                metrics.REJECTED.labels("slack", "no-secret").inc()
                return _answer(401, "Slack signing secret not configured: refusing")
            if not headers.get("x-slack-signature") or not headers.get("x-slack-request-timestamp"):
                metrics.REJECTED.labels("slack", "signature").inc()
                return _answer(401, "missing Slack signature headers")
        return None

    def _gitlab_token(self, headers: Mapping[str, str]) -> Response | None:
        key = secret(self.settings.gitlab_webhook_secret)
        if not key:
            metrics.REJECTED.labels("gitlab", "no-secret").inc()
            return _answer(401, "GitLab webhook secret not configured: refusing")
        given = headers.get("x-gitlab-token", "")
        if not hmac.compare_digest(key.encode(), given.encode("utf-8", "replace")):
            metrics.REJECTED.labels("gitlab", "signature").inc()
            return _answer(401, "bad or missing X-Gitlab-Token")
        return None

    def _verify_gitlab(self, body: bytes, headers: Mapping[str, str]) -> Delivery | Response:
        refused = self._gitlab_token(headers)
        if refused is not None:
            return refused
        delivery_id = (
            headers.get("idempotency-key")
            or headers.get("x-gitlab-event-uuid")
            or hashlib.sha256(body).hexdigest()
        )
        event = headers.get("x-gitlab-event", "")
        return _delivery("gitlab", delivery_id, event, body, headers)

    def _verify_slack(self, body: bytes, headers: Mapping[str, str]) -> Delivery | Response:
        if self.slack_verifier is None:
            metrics.REJECTED.labels("slack", "no-secret").inc()
            return _answer(401, "Slack signing secret not configured: refusing")
        # signature over the raw body, a 5-minute window, and no replays
        problem = self.slack_verifier.problem(body, headers)
        if problem is not None:
            metrics.REJECTED.labels("slack", "signature").inc()
            return _answer(401, problem)
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=True)
            payload = json.loads(form["payload"][0])
        except (ValueError, KeyError, IndexError):
            return _answer(400, "expected a form with a JSON `payload` field")
        if not isinstance(payload, dict):
            return _answer(400, "payload is not a JSON object")
        # derived from the signature: the same request sent twice is stored once
        event = str(payload.get("type") or "interaction")
        return _delivery("slack", slack_delivery_id(headers), event, body, headers, payload)

    # -- operations ------------------------------------------------------------------
    def _readiness(self) -> Response:
        checks: dict[str, str] = {}
        ready = True
        try:
            store.ping(self.engine)
            checks["database"] = "ok"
        except SQLAlchemyError as exc:
            ready = False
            checks["database"] = f"unreachable ({exc.__class__.__name__})"
        try:
            self.policy.policy  # noqa: B018 - triggers a reload check
            checks["policy"] = f"loaded from {self.policy.path}"
            if self.policy.error:
                checks["policy"] += "; the last reload failed, keeping the last good policy"
                checks["policy_error"] = self.policy.error
        except Exception as exc:  # noqa: BLE001
            ready = False
            checks["policy"] = f"not loaded: {exc}"
        checks["status"] = "ready" if ready else "not ready"
        return JSONResponse(checks, status_code=200 if ready else 503)

    def _metrics(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        started = time.monotonic()
        try:
            stats = inbox.stats(self.engine)
        except SQLAlchemyError:
            log.warning("metrics: database unavailable, queue gauges not updated")
        else:
            for state, count in stats.by_state.items():
                metrics.QUEUE_DEPTH.labels(state).set(count)
            metrics.QUEUE_AGE.set(stats.oldest_queued_age)
        log.debug("metrics collected in %.3fs", time.monotonic() - started)
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _verify_github_digest(
    digest: str, body: bytes, headers: Mapping[str, str]
) -> Delivery | Response:
    """`digest`: the HMAC-SHA256 of `body` under the webhook secret, computed as it
    streamed in; compared in constant time with the signature header."""
    given = headers.get("x-hub-signature-256", "")
    if not hmac.compare_digest(f"sha256={digest}".encode(), given.encode("utf-8", "replace")):
        metrics.REJECTED.labels("github", "signature").inc()
        return _answer(401, "bad or missing X-Hub-Signature-256")
    delivery_id = headers.get("x-github-delivery", "")
    event = headers.get("x-github-event", "")
    return _delivery("github", delivery_id, event, body, headers)


def _delivery(
    forge: str,
    delivery_id: str,
    event: str,
    body: bytes,
    headers: Mapping[str, str],
    payload: dict[str, Any] | None = None,
) -> Delivery | Response:
    """The delivery, or 400 when an id, the event or a JSON object body is missing. The
    body is a JSON object for GitHub and GitLab; Slack's is a form, whose parsed `payload`
    field the caller passes."""
    if not delivery_id or len(delivery_id) > MAX_ID_LENGTH:
        metrics.REJECTED.labels(forge, "no-delivery-id").inc()
        return _answer(400, "missing or overlong delivery id header")
    if not event or len(event) > 100:
        metrics.REJECTED.labels(forge, "no-event").inc()
        return _answer(400, "missing or overlong event header")
    delivery = Delivery(
        id=delivery_id, forge=forge, event=event, body=body, headers=inbox.keep_headers(headers)
    )
    if (payload if forge == "slack" else delivery.payload) is None:
        metrics.REJECTED.labels(forge, "bad-json").inc()
        return _answer(400, "body is not a JSON object")
    return delivery
