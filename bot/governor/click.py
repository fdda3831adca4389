"""Slack clicks and decisions: approve, reject, break glass.

Two callers use one `Clicks`:

- the Slack endpoint (`inbox_subject()`, `fast_path()`): the stored click is serialized
  with the deliveries of its pull request or deploy, and the reject / break-glass modal
  is opened while Slack's 3-second `trigger_id` is still alive;
- the workers (`handle_delivery()`, source handler "slack") for the stored clicks.

After a decision the pull request is re-evaluated *directly* by the worker holding the
click (`ChangeGovernor.recheck`): its inbox subject is the pull request's, so it can never
run beside another delivery of that pull request. A deploy gate is asked again
(`DeployGates.resume`) and answers the forge once decided.

No network call is made while a database session is open (on SQLite an open write
transaction holds the database's one write lock).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import inbox, store
from bot.approvals import decisions, requests
from bot.approvals.break_glass import SELF_BREAK_GLASS, BreakGlass, break_glass
from bot.approvals.clicks import handle_event
from bot.approvals.models import ApprovalRequestRecord, RequestKind, RequestState
from bot.forges import Forge
from bot.governor.change import ChangeGovernor
from bot.governor.deploy import DeployGates
from bot.governor.messages import SlackRequests
from bot.governor.policy import PolicyHolder, policy_at
from bot.governor.routing import Result, forge_of, inbox_subject_of
from bot.policy.approvers import is_member
from bot.policy.schema import Policy
from bot.slack.blocks import escape
from bot.slack.interactions import BreakGlassReason, Click, RejectReason, parse_interaction
from bot.slack.signing import InteractionError

log = logging.getLogger(__name__)

OUT_OF_DATE = "This request is out of date: break glass on the newest request instead."

Event = Click | RejectReason | BreakGlassReason


class Clicks:
    """What a Slack interaction decides, from the endpoint and from the workers."""

    def __init__(
        self,
        engine: Engine,
        holder: PolicyHolder,
        forges: Mapping[str, Forge],
        *,
        slack: SlackRequests,
        changes: ChangeGovernor,
        gates: DeployGates,
    ) -> None:
        self.engine = engine
        self.reader = engine.execution_options(sqlite_deferred=True)
        self.holder = holder
        self.forges = dict(forges)
        self.slack = slack
        self.changes = changes
        self.gates = gates

    # -- the Slack endpoint's side -------------------------------------------------------
    def _parse(self, body: bytes) -> Event | None:
        try:
            return parse_interaction(body, self.slack.signer)
        except (InteractionError, UnicodeDecodeError):
            return None

    def inbox_subject(self, body: bytes) -> str:
        """The subject a stored click is serialized under (its request's), or ""."""
        event = self._parse(body)
        if event is None:
            return ""
        with Session(self.reader) as session:
            request = requests.get_request(session, event.request_id)
            return inbox_subject_of(request) if request is not None else ""

    def fast_path(self, body: bytes) -> None:
        """Open the reject / break-glass reason modal now, while the click's `trigger_id`
        (3 seconds) is alive, if the clicker may use it. Refusals are left to the worker,
        which answers them; so is anything that needs a write (an expired request)."""
        event = self._parse(body)
        if not isinstance(event, Click) or event.action == "approve" or not event.trigger_id:
            return
        if self.foreign_workspace(event, fast=True) or not self._may_open_modal(event):
            return
        if event.action == "reject":
            self.slack.fast_notifier.open_reject_modal(event)
        else:
            self.slack.fast_notifier.open_break_glass_modal(event)

    def _may_open_modal(self, event: Click) -> bool:
        """Whether the clicker may reject or break glass on a request open at this SHA."""
        policy = self.holder.policy
        actor = ("slack", event.user_id)
        with Session(self.reader) as session:
            request = requests.get_request(session, event.request_id)
            if request is None or not request.is_open or store.utcnow() >= request.expires_at:
                return False
            if event.action == "reject":
                if request.group_name in policy.groups:
                    directory = self.slack.directory(policy, [request.group_name], fast=True)
                    ballot = decisions.Ballot(request.id, event.sha, actor, "reject")
                    if decisions.refusal(session, policy, request, ballot, directory=directory):
                        return False
            elif (
                not self._may_break_glass(actor, fast=True)
                or event.sha != request.sha
                or decisions.is_initiator(policy, request, actor)
            ):
                return False
            session.rollback()
        return True

    def foreign_workspace(self, event: Event, *, fast: bool) -> str | None:
        """Why an interaction is not from the installed workspace, or None. The signing
        secret is the app's, shared by every workspace it is installed in: a user id from
        another one may name someone else entirely. SlackError (retried) if unknown."""
        installed = (self.slack.fast_notifier if fast else self.slack.notifier).team_id()
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
        return is_member(admin, group, *actor, self.slack.directory(admin, [name], fast=fast))

    # -- the workers' side -------------------------------------------------------------
    def handle_delivery(self, item: inbox.Claimed) -> Result:
        """A stored Slack interaction (source handler "slack")."""
        try:
            event = parse_interaction(item.delivery.body, self.slack.signer)
        except (InteractionError, UnicodeDecodeError) as exc:
            return inbox.IGNORED, f"interaction refused: {exc}"
        if event is None:
            return inbox.IGNORED, "not a changegate interaction"
        foreign = self.foreign_workspace(event, fast=False)
        if foreign:
            log.warning("Slack interaction refused: %s", foreign)
            return inbox.IGNORED, f"interaction refused: {foreign}"
        with Session(self.reader) as session:
            request = requests.get_request(session, event.request_id)
            if request is not None:
                session.expunge(request)
        if request is None:
            return inbox.IGNORED, f"no approval request {event.request_id}"
        policy = policy_at(
            self.holder.policy, self.forges, forge_of(request.subject), request.repo, request.sha
        )
        if isinstance(event, Click) and event.action == "reject":
            return self._reject_click(event, request, policy, item.key)
        if isinstance(event, Click) and event.action == "break-glass":
            return self._break_glass_click(event, request)
        if isinstance(event, BreakGlassReason):
            return self._break_glass(event, request, item.key)
        return self._decide(event, policy, item.key)

    def _refuse(self, channel: str, user: str, why: str) -> Result:
        self.slack.notifier.reply(channel, user, why)
        return inbox.DONE, f"refused: {why}"

    def _decide(self, event: Click | RejectReason, policy: Policy, delivery_key: str) -> Result:
        with Session(self.engine, expire_on_commit=False) as session:
            handled = handle_event(
                session,
                policy,
                event,
                notifier=self.slack.notifier,
                resolver=self.slack.resolver,
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
        directory = self.slack.directory(policy, [request.group_name])  # before the write lock
        with Session(self.engine, expire_on_commit=False) as session:
            current = requests.get_request(session, event.request_id)
            if current is None:
                return inbox.IGNORED, f"no approval request {event.request_id}"
            ballot = decisions.Ballot(
                current.id, event.sha, ("slack", event.user_id), "reject", delivery_id=delivery_key
            )
            why = decisions.refusal(session, policy, current, ballot, directory=directory)
            expired_now = current.state == RequestState.EXPIRED and current.message_ts
            session.commit()
        channel = event.channel_id or request.channel or ""
        if expired_now:
            self.slack.update_messages([event.request_id])
        if why is not None:
            return self._refuse(channel, event.user_id, why)
        return inbox.DONE, "reason modal opened at the endpoint"

    def _break_glass_click(self, event: Click, request: ApprovalRequestRecord) -> Result:
        group = self.holder.policy.break_glass.group
        channel = event.channel_id or request.channel or ""
        if not self._may_break_glass(("slack", event.user_id), fast=False):
            return self._refuse(channel, event.user_id, f"Only members of {group} can break glass.")
        if request.state == RequestState.SUPERSEDED or event.sha != request.sha:
            return self._refuse(channel, event.user_id, OUT_OF_DATE)
        if decisions.is_initiator(self.holder.policy, request, ("slack", event.user_id)):
            return self._refuse(channel, event.user_id, SELF_BREAK_GLASS.format(group=group))
        return inbox.DONE, "break-glass modal opened at the endpoint"

    def _break_glass(
        self, event: BreakGlassReason, request: ApprovalRequestRecord, delivery_key: str
    ) -> Result:
        admin = self.holder.policy  # break-glass groups: the admin policy's only
        settings = admin.break_glass
        channel = event.channel_id or request.channel or self.slack.default_channel or ""
        if request.state == RequestState.SUPERSEDED or event.sha != request.sha:
            return self._refuse(channel, event.user_id, OUT_OF_DATE)
        directory = self.slack.directory(admin, [settings.group])
        with Session(self.engine, expire_on_commit=False) as session:
            glass = break_glass(
                session,
                admin,
                BreakGlass(
                    subject=request.subject,
                    sha=request.sha,
                    actor=("slack", event.user_id),
                    reason=event.reason,
                    channel=request.channel,
                    delivery_id=delivery_key,
                ),
                settings=settings,
                directory=directory,
            )
            session.commit()
            overridden = [r.id for r in glass.overridden]
            retro = glass.retro_review.id if glass.retro_review else None
        if not glass.accepted:
            self.slack.notifier.reply(channel, event.user_id, glass.message)
            return inbox.DONE, f"refused: {glass.message}"
        self.slack.update_messages(overridden)
        if channel:
            self.slack.notifier.announce(
                channel,
                f":rotating_light: <@{event.user_id}> broke glass on `{request.sha[:7]}` "
                f"({escape(request.title or request.subject)}): {escape(event.reason)}\n"
                f"{escape(glass.message)}",
                thread_ts=request.message_ts,
            )
        if retro is not None:
            self.slack.post_requests([retro])
        self.after_decision(request, delivery_key)
        return inbox.DONE, glass.message

    def after_decision(self, request: ApprovalRequestRecord, delivery_key: str | None) -> None:
        """What a decision on `request` changes elsewhere: the pull request's check is
        re-evaluated; a deploy gate is asked again and answers the forge if decided."""
        if request.kind == RequestKind.CHANGE and request.number is not None:
            self.changes.recheck(
                forge_of(request.subject), request.repo, request.number, delivery_key
            )
        elif request.kind == RequestKind.DEPLOY:
            self.gates.resume(request.id, delivery_key)
