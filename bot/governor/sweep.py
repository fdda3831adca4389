"""Time: expiry, reminders, and the re-evaluations they call for.

`tick()` runs periodically on the workers. The sweep holds no lease on any pull request
or deploy gate, so it never re-evaluates one itself: it *enqueues* a re-evaluation
(`forge="changegate"`, event "recheck") under the right inbox subject, and the worker that
claims it (`handle_recheck()`) runs it serialized with that change's other deliveries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from bot import inbox, metrics, store
from bot.approvals import requests
from bot.approvals.models import ApprovalRequestRecord, RequestKind, RequestState
from bot.forges import RECHECK, Delivery
from bot.governor.change import ChangeGovernor
from bot.governor.deploy import DeployGates
from bot.governor.messages import SlackRequests
from bot.governor.routing import RECHECK_SOURCE, Result, forge_of, inbox_subject_of
from bot.slack.blocks import escape
from bot.slack.client import SlackError

log = logging.getLogger(__name__)


class Sweep:
    """Expires and reminds approval requests; enqueues and runs the rechecks that follow."""

    def __init__(
        self,
        engine: Engine,
        *,
        slack: SlackRequests,
        changes: ChangeGovernor,
        gates: DeployGates,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.slack = slack
        self.changes = changes
        self.gates = gates
        self.on_enqueued = on_enqueued  # wakes idle workers

    def enqueue(self, subject: str, body: dict[str, Any]) -> None:
        """A re-evaluation the server asks of itself, serialized like any delivery."""
        delivery = Delivery(
            id=f"{body['kind']}:{uuid.uuid4().hex}",
            forge=RECHECK_SOURCE,
            event=RECHECK,
            body=json.dumps(body).encode(),
        )
        inbox.store(self.engine, delivery, subject)
        if self.on_enqueued is not None:
            self.on_enqueued()

    def handle_recheck(self, item: inbox.Claimed) -> Result:
        """Source handler "changegate": the re-evaluations `enqueue()` stored."""
        body = json.loads(item.delivery.body)
        if body.get("kind") == "change":
            note = self.changes.recheck(body["forge"], body["repo"], int(body["number"]), item.key)
            return inbox.DONE, note
        if body.get("kind") == "deploy":
            self.gates.resume(str(body["request"]), item.key)
            return inbox.DONE, None
        return inbox.IGNORED, f"unknown recheck {body.get('kind')!r}"

    def tick(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Expire overdue requests and nudge those about to expire; returns (expired,
        reminded). One process sweeps at a time on PostgreSQL."""
        due = self._due(now)
        if due is None:
            return (0, 0)
        expired, reminded = due
        policy = self.slack.holder.policy
        for request in reminded:
            try:
                self.slack.notifier.remind(request, policy.groups.get(request.group_name))
            except SlackError as exc:
                log.warning("reminder for %s not sent: %s", request.id, exc)
        for request in expired:
            try:
                self.slack.notifier.update_request(request, policy.groups.get(request.group_name))
            except SlackError as exc:
                log.warning("expired request %s: message not updated: %s", request.id, exc)
            self._after_expiry(request)
        return (len(expired), len(reminded))

    def _due(
        self, now: dt.datetime | None
    ) -> tuple[list[ApprovalRequestRecord], list[ApprovalRequestRecord]] | None:
        """(expired now, to remind now), settled in the database; None when another
        process holds the sweep."""
        with Session(self.engine, expire_on_commit=False) as session:
            if self.engine.dialect.name == "postgresql":
                got = session.execute(
                    sa.select(
                        sa.func.pg_try_advisory_xact_lock(store.advisory_key("approvals-tick"))
                    )
                ).scalar()
                if not got:
                    return None
            expired = requests.expire_due(session, now)
            reminded = requests.reminders_due(session, now)
            session.commit()
            pending = session.execute(
                sa.select(sa.func.count())
                .select_from(ApprovalRequestRecord)
                .where(col(ApprovalRequestRecord.state) == RequestState.PENDING)
            ).scalar()
            metrics.APPROVALS_PENDING.set(int(pending or 0))
            for request in [*expired, *reminded]:
                session.expunge(request)
        return expired, reminded

    def _after_expiry(self, request: ApprovalRequestRecord) -> None:
        """An expired change request fails its check again; an expired deploy request
        answers its gate; an unapproved retro-review is escalated in its channel."""
        if request.kind == RequestKind.CHANGE and request.number is not None:
            self.enqueue(
                inbox_subject_of(request),
                {
                    "kind": "change",
                    "forge": forge_of(request.subject),
                    "repo": request.repo,
                    "number": request.number,
                },
            )
        elif request.kind == RequestKind.DEPLOY:
            self.enqueue(inbox_subject_of(request), {"kind": "deploy", "request": request.id})
        elif request.kind == RequestKind.RETRO_REVIEW and request.channel:
            try:
                self.slack.notifier.announce(
                    request.channel,
                    f":warning: Retro-review of the break-glass on `{request.sha[:7]}` "
                    f"({escape(request.title or request.subject)}) was not approved in "
                    f"time: escalated to {escape(request.group_name)}.",
                    thread_ts=request.message_ts,
                )
            except SlackError as exc:
                log.warning("escalation of %s not announced: %s", request.id, exc)
