"""The approval workflow wired into the server: the governor's Slack side, clicks, time.

Three callers use one `ApprovalService`:

- the governor (`review()` after `evaluate()`, then `follow_up()` once the check is
  published): opens one request per group with missing approvals at the head SHA, posts
  it to Slack, supersedes requests of older heads, and turns a Slack rejection into a
  failing check and a break-glass into a passing one (with a note that says so);
- the Slack endpoint (`inbox_subject()`, `fast_path()`): the stored click is serialized
  with the deliveries of its pull request or deploy, and the reject / break-glass modal
  is opened while Slack's 3-second `trigger_id` is still alive;
- the workers (`handle_delivery()` for stored clicks, `handle_recheck()` for the
  re-evaluations this service enqueues, `tick()` for expiry and reminders).

After a click the pull request is re-evaluated *directly* by the worker holding the
click: its inbox subject is the pull request's, so it can never run beside another
delivery of that pull request. The periodic sweep has no such lease, so it *enqueues* a
re-evaluation (`forge="changegate"`) under the right subject instead.

No network call is made while a database session is open (on SQLite an open write
transaction holds the database's one write lock).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from bot import inbox, metrics, store
from bot.approvals import workflow
from bot.approvals.clicks import handle_event
from bot.approvals.models import ApprovalRequestRecord, RequestKind, RequestState
from bot.change import Approval, Change, Decision, Verdict
from bot.forges import Delivery, Forge
from bot.policy.approvers import Directory, is_member
from bot.policy.schema import Policy, parse_duration
from bot.policy.sources import REPOSITORY_POLICY
from bot.slack.blocks import escape, findings_detail
from bot.slack.client import (
    SlackError,
    SlackNotifier,
    UserGroupResolver,
    UserGroupsUnavailable,
    make_client,
)
from bot.slack.interactions import BreakGlassReason, Click, RejectReason, parse_interaction
from bot.slack.signing import ButtonSigner, InteractionError

if TYPE_CHECKING:
    from bot.gates import DeployGates
    from bot.governor import PolicyHolder
    from bot.settings import Settings

log = logging.getLogger(__name__)

#: inbox `forge` of the re-evaluations the server asks of itself
RECHECK_SOURCE = "changegate"

Result = tuple[str, str | None]


@dataclass(frozen=True)
class Override:
    """The check differs from what the findings say, and `note` says why."""

    decision: Decision
    note: str


@dataclass
class Followup:
    """Slack work left once the check is published: messages to post and to update."""

    post: list[str] = field(default_factory=list)
    update: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.post or self.update)


def merge_directories(*directories: Directory) -> Directory:
    members: dict[str, frozenset[str]] = {}
    for directory in directories:
        members.update(directory.members)
    email_of = next((d.email_of for d in directories if d.email_of is not None), None)
    return Directory(members=members, email_of=email_of)


def forge_of(subject: str) -> str:
    """`github:acme/app#12` -> `github`."""
    return subject.split(":", 1)[0]


def inbox_subject_of(request: ApprovalRequestRecord) -> str:
    """The inbox subject a delivery about `request` is serialized under: the pull
    request's own, or the deploy gate's (`github:acme/app@deploy:production`, which is
    what the forges name deploy events)."""
    if request.kind == RequestKind.DEPLOY or (
        request.kind == RequestKind.RETRO_REVIEW and request.environment and not request.number
    ):
        return f"{forge_of(request.subject)}:{request.repo}@deploy:{request.environment}"
    return request.subject


def _who(system: str, user: str) -> str:
    return f"{user} ({system})"


class ApprovalService:
    """Slack approvals for one server: its engine, policy, forges and Slack clients."""

    def __init__(
        self,
        engine: Engine,
        holder: PolicyHolder,
        forges: Mapping[str, Forge],
        *,
        notifier: SlackNotifier,
        resolver: UserGroupResolver,
        fast_notifier: SlackNotifier,
        fast_resolver: UserGroupResolver,
        default_channel: str | None = None,
        expires_after: dt.timedelta = dt.timedelta(hours=72),
        public_url: str = "http://127.0.0.1:8000",
    ) -> None:
        self.engine = engine
        self.reader = engine.execution_options(sqlite_deferred=True)
        self.holder = holder
        self.forges = dict(forges)
        self.notifier = notifier
        self.resolver = resolver
        self.fast_notifier = fast_notifier
        self.fast_resolver = fast_resolver
        self.signer = notifier.signer
        self.default_channel = default_channel
        self.expires_after = expires_after
        self.public_url = public_url
        self.gates: DeployGates | None = None  # set by `wire()`
        self.on_enqueued: Callable[[], None] | None = None  # wakes idle workers

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine,
        holder: PolicyHolder,
        forges: Mapping[str, Forge],
    ) -> ApprovalService | None:
        """None when Slack is not configured (approvals then come from forges only)."""
        from bot.settings import secret

        token, signing = secret(settings.slack_bot_token), secret(settings.slack_signing_secret)
        if not token or not signing:
            return None
        signer = ButtonSigner(signing)
        client = make_client(token, settings.slack_api_url)
        # the request path may spend well under Slack's 3 s: no retries, a short timeout
        fast = make_client(token, settings.slack_api_url, timeout=2, retries=0)
        ttl = settings.slack_usergroup_ttl_seconds
        return cls(
            engine,
            holder,
            forges,
            notifier=SlackNotifier(client, signer, break_glass=True),
            resolver=UserGroupResolver(client, ttl=ttl, match_email=settings.slack_match_email),
            fast_notifier=SlackNotifier(fast, signer, break_glass=True),
            fast_resolver=UserGroupResolver(fast, ttl=ttl, match_email=settings.slack_match_email),
            default_channel=settings.slack_default_channel,
            expires_after=parse_duration(settings.approval_expires_after),
            public_url=settings.public_url,
        )

    # -- policies and people -------------------------------------------------------------
    def policy_for(self, forge_name: str, repo: str, sha: str) -> Policy:
        """The admin policy tightened by the repository's own (as the governor does)."""
        from bot.policy.merge import merge_policies

        admin = self.holder.policy
        forge = self.forges.get(forge_name)
        if forge is None or not repo:
            return admin
        change = Change(repo=repo, base=None, head=sha, forge=forge_name)
        return merge_policies(admin, forge.repository_policy(change), REPOSITORY_POLICY)

    def directory(
        self, policy: Policy, groups: Sequence[str] | None = None, *, fast: bool = False
    ) -> Directory:
        """Slack user groups of `groups` resolved; a workspace without them resolves none
        (its user ids still count) and the failure is logged, not raised."""
        resolver = self.fast_resolver if fast else self.resolver
        try:
            return resolver.directory(policy, groups)
        except UserGroupsUnavailable as exc:
            log.warning("%s", exc)
            return Directory()

    # -- governor side -----------------------------------------------------------------
    def approvals_for(self, subject: str, sha: str) -> list[Approval]:
        with Session(self.reader) as session:
            return workflow.approvals_for(session, subject, sha)

    def review(
        self,
        *,
        forge: str,
        change: Change,
        subject: str,
        verdict: Verdict,
        policy: Policy,
        forge_approvals: Iterable[Approval],
        directory: Directory,
        details_url: str,
        delivery_key: str | None = None,
        reopen_expired: bool = True,
    ) -> tuple[Override | None, Followup]:
        """Bring the requests of `subject` in line with `verdict` (database only)."""
        head = change.head
        followup = Followup()
        override: Override | None = None
        with Session(self.engine, expire_on_commit=False) as session:
            glass = workflow.break_glass_for(session, subject, head)
            rejected = workflow.rejection_for(session, subject, head)
            if verdict.decision is Decision.APPROVAL_REQUIRED and glass is not None:
                override = Override(
                    Decision.PASS,
                    f"Break-glass by {_who(glass.actor_system, glass.actor)}: {glass.reason} "
                    "(retro-review pending)",
                )
            elif verdict.decision is not Decision.FAIL and rejected is not None:
                why = f": {rejected.reason}" if rejected.reason else ""
                override = Override(
                    Decision.FAIL,
                    f"Rejected in Slack by {_who(rejected.actor_system, rejected.actor)}{why}",
                )
            missing: dict[str, list[str]] = {}
            needed: dict[str, int] = {}
            for status in verdict.missing_approvals:
                missing.setdefault(status.group, []).append(status.rule)
                needed[status.group] = max(needed.get(status.group, 1), status.required)
            if change.number is None:
                pass  # a push: already merged, its deploy is what a gate holds
            elif verdict.decision is Decision.APPROVAL_REQUIRED and override is None:
                expired: list[str] = []
                for group, rules in missing.items():
                    opened = workflow.open_request(
                        session,
                        subject=subject,
                        sha=head,
                        group=group,
                        rules=rules,
                        min_approvals=needed[group],
                        expires_after=self.expires_after,
                        basis=change.basis or "",
                        kind=RequestKind.CHANGE,
                        author=(forge, change.author) if change.author else None,
                        repo=change.repo,
                        number=change.number,
                        title=change.title,
                        url=change.url,
                        channel=self._channel(policy, rules, group),
                        details={
                            "findings": findings_detail(
                                f for f in verdict.findings if f.rule in rules
                            ),
                            "details_url": details_url,
                        },
                        delivery_id=delivery_key,
                        reopen_expired=reopen_expired,
                    )
                    followup.update += [r.id for r in opened.superseded]
                    request = opened.request
                    if request.is_open and (opened.created or not request.message_ts):
                        followup.post.append(request.id)
                    if request.state == RequestState.EXPIRED:
                        expired.append(group)
                if expired:
                    override = Override(
                        Decision.APPROVAL_REQUIRED,
                        f"The approval request for {', '.join(expired)} expired: re-run the "
                        "check or push to ask again",
                    )
            else:
                followup.update += [
                    r.id
                    for r in workflow.supersede(
                        session, subject, head, delivery_id=delivery_key, basis=change.basis or ""
                    )
                ]
            # requests at this head whose group no longer misses anything: settle them
            approvals = list(forge_approvals)
            for request in workflow.requests_for(session, subject, head):
                if (
                    request.is_open
                    and request.kind == RequestKind.CHANGE
                    and request.group_name not in missing
                    and request.group_name in policy.groups
                ):
                    outcome = workflow.refresh(
                        session,
                        policy,
                        request.id,
                        other_approvals=approvals,
                        directory=directory,
                    )
                    if outcome.settled:
                        followup.update.append(request.id)
            session.commit()
        return override, followup

    def follow_up(self, followup: Followup) -> None:
        """Post new requests and update changed ones (after the check is published). A
        failure raises: the delivery is retried, and a request without a message is
        posted then."""
        self.post_requests(followup.post)
        self.update_messages(followup.update)

    def _channel(self, policy: Policy, rules: Sequence[str], group: str) -> str | None:
        by_id = {r.id: r for r in policy.rules}
        for rule_id in rules:
            rule = by_id.get(rule_id)
            if rule is not None and rule.slack_channel:
                return rule.slack_channel
        found = policy.groups.get(group)
        if found is not None and found.slack_channel:
            return found.slack_channel
        return self.default_channel

    # -- Slack messages ----------------------------------------------------------------
    def post_requests(self, request_ids: Iterable[str]) -> None:
        policy = self.holder.policy
        for request_id in request_ids:
            with Session(self.reader) as session:
                request = workflow.get_request(session, request_id)
                if request is not None:
                    session.expunge(request)
            if request is None or not request.is_open or request.message_ts:
                continue
            channel = request.channel or self.default_channel
            if not channel:
                log.warning(
                    "approval request %s (%s) has no Slack channel: set slack_channel on "
                    "the rule, the group or the deploy gate, or CHANGEGATE_SLACK_DEFAULT_CHANNEL",
                    request.id,
                    request.subject,
                )
                continue
            posted_channel, ts = self.notifier.post_request(
                request, policy.groups.get(request.group_name), channel
            )
            with Session(self.engine, expire_on_commit=False) as session:
                workflow.set_message(session, request.id, posted_channel, ts)
                session.commit()

    def update_messages(self, request_ids: Iterable[str]) -> None:
        policy = self.holder.policy
        for request_id in dict.fromkeys(request_ids):
            with Session(self.reader) as session:
                request = workflow.get_request(session, request_id)
                if request is not None:
                    session.expunge(request)
            if request is not None and request.message_ts:
                self.notifier.update_request(request, policy.groups.get(request.group_name))

    # -- the Slack endpoint's side -------------------------------------------------------
    def inbox_subject(self, body: bytes) -> str:
        """The subject a stored click is serialized under (its request's), or ""."""
        try:
            event = parse_interaction(body, self.signer)
        except (InteractionError, UnicodeDecodeError):
            return ""
        if event is None:
            return ""
        with Session(self.reader) as session:
            request = workflow.get_request(session, event.request_id)
            return inbox_subject_of(request) if request is not None else ""

    def fast_path(self, body: bytes) -> None:
        """Open the reject / break-glass reason modal now, while the click's `trigger_id`
        (3 seconds) is alive, if the clicker may use it. Refusals are left to the worker,
        which answers them; so is anything that needs a write (an expired request)."""
        try:
            event = parse_interaction(body, self.signer)
        except (InteractionError, UnicodeDecodeError):
            return
        if not isinstance(event, Click) or event.action == "approve" or not event.trigger_id:
            return
        if self.foreign_workspace(event, fast=True):
            return
        policy = self.holder.policy
        actor = ("slack", event.user_id)
        with Session(self.reader) as session:
            request = workflow.get_request(session, event.request_id)
            if request is None or not request.is_open or store.utcnow() >= request.expires_at:
                return
            if event.action == "reject":
                if request.group_name in policy.groups:
                    directory = self.directory(policy, [request.group_name], fast=True)
                    if workflow.refusal(
                        session, policy, request, event.sha, actor, directory=directory
                    ):
                        return
            elif (
                not self._may_break_glass(actor, fast=True)
                or event.sha != request.sha
                or workflow.is_initiator(self.holder.policy, request, actor)
            ):
                return
            session.rollback()
        if event.action == "reject":
            self.fast_notifier.open_reject_modal(event)
        else:
            self.fast_notifier.open_break_glass_modal(event)

    def foreign_workspace(
        self, event: Click | RejectReason | BreakGlassReason, *, fast: bool
    ) -> str | None:
        """Why an interaction is not from the installed workspace, or None. The signing
        secret is the app's, shared by every workspace it is installed in: a user id from
        another one may name someone else entirely. SlackError (retried) if unknown."""
        installed = (self.fast_notifier if fast else self.notifier).team_id()
        if event.team_id != installed:
            return f"from workspace {event.team_id or '(none)'}, not {installed}"
        return None

    def _may_break_glass(self, actor: tuple[str, str], *, fast: bool) -> bool:
        """Break-glass is the admin's alone: its group is read from the admin policy, never
        from a merged one where a repository could define the `emergency` group itself."""
        admin = self.holder.policy
        name = admin.break_glass.group
        group = admin.groups.get(name)
        if group is None:
            return False
        return is_member(admin, group, *actor, self.directory(admin, [name], fast=fast))

    # -- the workers' side: clicks ------------------------------------------------------
    def handle_delivery(self, item: inbox.Claimed) -> Result:
        """A stored Slack interaction (source handler "slack")."""
        try:
            event = parse_interaction(item.delivery.body, self.signer)
        except (InteractionError, UnicodeDecodeError) as exc:
            return inbox.IGNORED, f"interaction refused: {exc}"
        if event is None:
            return inbox.IGNORED, "not a changegate interaction"
        foreign = self.foreign_workspace(event, fast=False)
        if foreign:
            log.warning("Slack interaction refused: %s", foreign)
            return inbox.IGNORED, f"interaction refused: {foreign}"
        with Session(self.reader) as session:
            request = workflow.get_request(session, event.request_id)
            if request is not None:
                session.expunge(request)
        if request is None:
            return inbox.IGNORED, f"no approval request {event.request_id}"
        policy = self.policy_for(forge_of(request.subject), request.repo, request.sha)
        if isinstance(event, Click) and event.action == "reject":
            return self._reject_click(event, request, policy, item.key)
        if isinstance(event, Click) and event.action == "break-glass":
            return self._break_glass_click(event, request, policy)
        if isinstance(event, BreakGlassReason):
            return self._break_glass(event, request, policy, item.key)
        return self._decide(event, policy, item.key)

    def _decide(self, event: Click | RejectReason, policy: Policy, delivery_key: str) -> Result:
        with Session(self.engine, expire_on_commit=False) as session:
            handled = handle_event(
                session,
                policy,
                event,
                notifier=self.notifier,
                resolver=self.resolver,
                delivery_id=delivery_key,
            )
            session.commit()
            request = handled.request
            if request is not None:
                session.expunge(request)
        if request is not None and (handled.accepted or not request.is_open):
            self.after_decision(request, delivery_key)
        state = "recorded" if handled.accepted else "refused"
        return inbox.DONE, f"{state}: {handled.message}"

    def _reject_click(
        self, event: Click, request: ApprovalRequestRecord, policy: Policy, delivery_key: str
    ) -> Result:
        directory = self.directory(policy, [request.group_name])  # before the write lock
        with Session(self.engine, expire_on_commit=False) as session:
            current = workflow.get_request(session, event.request_id)
            if current is None:
                return inbox.IGNORED, f"no approval request {event.request_id}"
            why = workflow.refusal(
                session,
                policy,
                current,
                event.sha,
                ("slack", event.user_id),
                directory=directory,
                delivery_id=delivery_key,
            )
            expired_now = current.state == RequestState.EXPIRED and current.message_ts
            session.commit()
        channel = event.channel_id or request.channel or ""
        if expired_now:
            self.update_messages([event.request_id])
        if why is not None:
            self.notifier.reply(channel, event.user_id, why)
            return inbox.DONE, f"refused: {why}"
        return inbox.DONE, "reason modal opened at the endpoint"

    def _break_glass_click(
        self, event: Click, request: ApprovalRequestRecord, policy: Policy
    ) -> Result:
        group = self.holder.policy.break_glass.group
        channel = event.channel_id or request.channel or ""
        if not self._may_break_glass(("slack", event.user_id), fast=False):
            why = f"Only members of {group} can break glass."
            self.notifier.reply(channel, event.user_id, why)
            return inbox.DONE, f"refused: {why}"
        if request.state == RequestState.SUPERSEDED or event.sha != request.sha:
            why = "This request is out of date: break glass on the newest request instead."
            self.notifier.reply(channel, event.user_id, why)
            return inbox.DONE, f"refused: {why}"
        if workflow.is_initiator(self.holder.policy, request, ("slack", event.user_id)):
            why = workflow.SELF_BREAK_GLASS.format(group=group)
            self.notifier.reply(channel, event.user_id, why)
            return inbox.DONE, f"refused: {why}"
        return inbox.DONE, "break-glass modal opened at the endpoint"

    def _break_glass(
        self,
        event: BreakGlassReason,
        request: ApprovalRequestRecord,
        policy: Policy,
        delivery_key: str,
    ) -> Result:
        admin = self.holder.policy  # break-glass groups: the admin policy's only
        settings = admin.break_glass
        actor = ("slack", event.user_id)
        channel = event.channel_id or request.channel or self.default_channel or ""
        if request.state == RequestState.SUPERSEDED or event.sha != request.sha:
            why = "This request is out of date: break glass on the newest request instead."
            self.notifier.reply(channel, event.user_id, why)
            return inbox.DONE, f"refused: {why}"
        directory = self.directory(admin, [settings.group])
        with Session(self.engine, expire_on_commit=False) as session:
            glass = workflow.break_glass(
                session,
                admin,
                subject=request.subject,
                sha=request.sha,
                actor=actor,
                reason=event.reason,
                settings=settings,
                directory=directory,
                channel=request.channel,
                delivery_id=delivery_key,
            )
            session.commit()
            overridden = [r.id for r in glass.overridden]
            retro = glass.retro_review.id if glass.retro_review else None
        if not glass.accepted:
            self.notifier.reply(channel, event.user_id, glass.message)
            return inbox.DONE, f"refused: {glass.message}"
        self.update_messages(overridden)
        if channel:
            self.notifier.announce(
                channel,
                f":rotating_light: <@{event.user_id}> broke glass on `{request.sha[:7]}` "
                f"({escape(request.title or request.subject)}): {escape(event.reason)}\n"
                f"{escape(glass.message)}",
                thread_ts=request.message_ts,
            )
        if retro is not None:
            self.post_requests([retro])
        self.after_decision(request, delivery_key)
        return inbox.DONE, glass.message

    def after_decision(self, request: ApprovalRequestRecord, delivery_key: str | None) -> None:
        """What a decision on `request` changes elsewhere: the pull request's check is
        re-evaluated; a deploy gate is asked again and answers the forge if decided."""
        if request.kind == RequestKind.CHANGE and request.number is not None:
            self.recheck_change(
                forge_of(request.subject), request.repo, request.number, delivery_key
            )
        elif request.kind == RequestKind.DEPLOY and self.gates is not None:
            self.gates.resume(request.id, delivery_key)

    def recheck_change(
        self, forge_name: str, repo: str, number: int, delivery_key: str | None
    ) -> str:
        """Evaluate a pull/merge request again, as it is now, and publish the check."""
        from bot import governor

        forge = self.forges.get(forge_name)
        change_work = getattr(forge, "change_work", None)
        if forge is None or change_work is None:
            return f"forge {forge_name} cannot re-evaluate {repo}#{number}"
        work = change_work(repo, number)
        if work.action != "evaluate":
            return work.reason or "not evaluated"
        outcome = governor.handle(
            work,
            forge,
            engine=self.engine,
            policy=self.holder.policy,
            public_url=self.public_url,
            received_at=store.utcnow(),
            delivery_key=delivery_key,
            approvals=self,
        )
        return f"{outcome.status} {outcome.decision or ''}".strip()

    # -- the workers' side: time ---------------------------------------------------------
    def enqueue(self, subject: str, body: dict[str, Any]) -> None:
        """A re-evaluation the server asks of itself, serialized like any delivery."""
        delivery = Delivery(
            id=f"{body['kind']}:{uuid.uuid4().hex}",
            forge=RECHECK_SOURCE,
            event="recheck",
            body=json.dumps(body).encode(),
        )
        inbox.store(self.engine, delivery, subject)
        if self.on_enqueued is not None:
            self.on_enqueued()

    def handle_recheck(self, item: inbox.Claimed) -> Result:
        """Source handler "changegate": the re-evaluations `enqueue()` stored."""
        body = json.loads(item.delivery.body)
        if body.get("kind") == "change":
            note = self.recheck_change(body["forge"], body["repo"], int(body["number"]), item.key)
            return inbox.DONE, note
        if body.get("kind") == "deploy" and self.gates is not None:
            self.gates.resume(str(body["request"]), item.key)
            return inbox.DONE, None
        return inbox.IGNORED, f"unknown recheck {body.get('kind')!r}"

    def tick(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Expire overdue requests and nudge those about to expire; returns (expired,
        reminded). One process sweeps at a time on PostgreSQL."""
        with Session(self.engine, expire_on_commit=False) as session:
            if self.engine.dialect.name == "postgresql":
                got = session.execute(
                    sa.select(
                        sa.func.pg_try_advisory_xact_lock(store.advisory_key("approvals-tick"))
                    )
                ).scalar()
                if not got:
                    return (0, 0)
            expired = workflow.expire_due(session, now)
            reminded = workflow.reminders_due(session, now)
            session.commit()
            pending = session.execute(
                sa.select(sa.func.count())
                .select_from(ApprovalRequestRecord)
                .where(col(ApprovalRequestRecord.state) == RequestState.PENDING)
            ).scalar()
            metrics.APPROVALS_PENDING.set(int(pending or 0))
            for request in [*expired, *reminded]:
                session.expunge(request)
        policy = self.holder.policy
        for request in reminded:
            try:
                self.notifier.remind(request, policy.groups.get(request.group_name))
            except SlackError as exc:
                log.warning("reminder for %s not sent: %s", request.id, exc)
        for request in expired:
            try:
                self.notifier.update_request(request, policy.groups.get(request.group_name))
            except SlackError as exc:
                log.warning("expired request %s: message not updated: %s", request.id, exc)
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
                    self.notifier.announce(
                        request.channel,
                        f":warning: Retro-review of the break-glass on `{request.sha[:7]}` "
                        f"({escape(request.title or request.subject)}) was not approved in "
                        f"time: escalated to {escape(request.group_name)}.",
                        thread_ts=request.message_ts,
                    )
                except SlackError as exc:
                    log.warning("escalation of %s not announced: %s", request.id, exc)
        return (len(expired), len(reminded))


@dataclass
class Wiring:
    """What `serve` and `worker` plug into their workers and endpoints."""

    approvals: ApprovalService | None
    gates: DeployGates
    sources: dict[str, Callable[[inbox.Claimed], Result]]
    actions: dict[str, Callable[..., Result]]
    periodic: list[tuple[float, Callable[[], Any]]]


def wire(
    settings: Settings, engine: Engine, holder: PolicyHolder, forges: Mapping[str, Forge]
) -> Wiring:
    """The approval service (Slack on), the deploy gates, and their worker handlers."""
    from bot.gates import DeployGates

    service = ApprovalService.from_settings(settings, engine, holder, forges)
    gates = DeployGates(engine, holder, forges, service)
    sources: dict[str, Callable[[inbox.Claimed], Result]] = {}
    periodic: list[tuple[float, Callable[[], Any]]] = []
    if service is not None:
        service.gates = gates
        sources = {"slack": service.handle_delivery, RECHECK_SOURCE: service.handle_recheck}
        if settings.approvals_tick_seconds > 0:
            periodic.append((settings.approvals_tick_seconds, service.tick))
    return Wiring(service, gates, sources, {"deployment-gate": gates.handle}, periodic)
