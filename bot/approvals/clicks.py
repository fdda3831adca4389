"""A decision made in Slack, applied: an Approve click or a submitted reject reason.

The worker holding a stored interaction calls `handle_event`; it records the decision
(or the refusal), updates the request's message and answers the clicker. The other
interactions never get here: a Reject click only opens the reason modal (at the
endpoint, while its 3-second `trigger_id` lives; the worker answers refusals), and
break-glass clicks and reasons are `bot.governor.click.Clicks`' own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from bot.approvals.decisions import Ballot, record_decision
from bot.approvals.models import ApprovalRequestRecord, RequestState
from bot.approvals.requests import get_request
from bot.policy.approvers import Directory
from bot.policy.schema import Policy
from bot.slack.client import SlackNotifier, UserGroupResolver, UserGroupsUnavailable
from bot.slack.interactions import Click, RejectReason


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
    event: Click | RejectReason,
    *,
    notifier: SlackNotifier,
    resolver: UserGroupResolver | None = None,
    delivery_id: str | None = None,
) -> Handled:
    """Apply an Approve click or a submitted reject reason to its request, and tell Slack.

    Recorded or refused (an ephemeral reply says why). A decided request has its message
    updated: who decided, when, and no buttons. A Reject or Break glass click is no
    decision: ValueError.
    """
    if isinstance(event, Click) and event.action != "approve":
        raise ValueError(f"a {event.action} click is not a decision on the request")
    request = get_request(session, event.request_id)
    if request is None:
        return Handled(False, "This approval request does not exist (any more).", None)
    group = policy.groups.get(request.group_name)
    channel = event.channel_id or request.channel or ""
    try:
        directory = resolver.directory(policy, [request.group_name]) if resolver else Directory()
    except UserGroupsUnavailable as exc:
        notifier.reply(channel, event.user_id, str(exc))
        return Handled(False, str(exc), request)
    ballot = Ballot(
        event.request_id,
        event.sha,
        ("slack", event.user_id),
        "reject" if isinstance(event, RejectReason) else "approve",
        event.reason if isinstance(event, RejectReason) else "",
        delivery_id,
    )
    outcome = record_decision(session, policy, ballot, directory=directory)
    if outcome.request is not None and (
        outcome.settled or (not outcome.accepted and outcome.request.state == RequestState.EXPIRED)
    ):
        notifier.update_request(outcome.request, group)  # decided, or expired just now
    if not outcome.accepted or not outcome.settled:
        notifier.reply(channel, event.user_id, outcome.message)
    return Handled(outcome.accepted, outcome.message, outcome.request, outcome.settled)
