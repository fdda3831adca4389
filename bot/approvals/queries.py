"""What the store says about a subject at a SHA: Slack approvals (for `evaluate()`), the
rejection or the break-glass that decided it, its requests. Read-only."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.approvals.models import (
    ApprovalDecisionRecord,
    ApprovalRequestRecord,
    BreakGlassRecord,
    RequestState,
)
from bot.change import Approval


def _approval(row: ApprovalDecisionRecord) -> Approval:
    return Approval(
        system=row.actor_system, user=row.actor, sha=row.sha, via="slack", at=row.created_at
    )


def approvals_of(session: Session, request: ApprovalRequestRecord) -> list[Approval]:
    """The approvals given in Slack on one request."""
    rows = session.exec(
        select(ApprovalDecisionRecord).where(
            ApprovalDecisionRecord.request_id == request.id,
            ApprovalDecisionRecord.decision == "approve",
        )
    ).all()
    return [_approval(r) for r in rows]


def approvals_for(session: Session, subject: str, sha: str) -> list[Approval]:
    """Approvals given in Slack on `subject` at exactly `sha`, for `evaluate()`."""
    rows = session.exec(
        select(ApprovalDecisionRecord)
        .join(
            ApprovalRequestRecord,
            col(ApprovalRequestRecord.id) == col(ApprovalDecisionRecord.request_id),
        )
        .where(
            ApprovalRequestRecord.subject == subject,
            ApprovalDecisionRecord.sha == sha,
            ApprovalDecisionRecord.decision == "approve",
        )
        .order_by(col(ApprovalDecisionRecord.id))
    ).all()
    return [_approval(r) for r in rows]


def rejection_for(session: Session, subject: str, sha: str) -> ApprovalDecisionRecord | None:
    """The reject (with its reason) that decided a request of `subject` at `sha`, if any:
    the check shows it."""
    return session.exec(
        select(ApprovalDecisionRecord)
        .join(
            ApprovalRequestRecord,
            col(ApprovalRequestRecord.id) == col(ApprovalDecisionRecord.request_id),
        )
        .where(
            ApprovalRequestRecord.subject == subject,
            ApprovalRequestRecord.state == RequestState.REJECTED,
            ApprovalDecisionRecord.sha == sha,
            ApprovalDecisionRecord.decision == "reject",
        )
        .order_by(col(ApprovalDecisionRecord.id).desc())
    ).first()


def requests_for(
    session: Session, subject: str, sha: str | None = None
) -> list[ApprovalRequestRecord]:
    """The requests of `subject` (at `sha` only, if given), oldest first."""
    query = select(ApprovalRequestRecord).where(ApprovalRequestRecord.subject == subject)
    if sha is not None:
        query = query.where(ApprovalRequestRecord.sha == sha)
    return list(session.exec(query.order_by(col(ApprovalRequestRecord.created_at))).all())


def break_glass_for(session: Session, subject: str, sha: str) -> BreakGlassRecord | None:
    """The override in force for `subject` at `sha`, if any."""
    return session.exec(
        select(BreakGlassRecord)
        .where(BreakGlassRecord.subject == subject, BreakGlassRecord.sha == sha)
        .order_by(col(BreakGlassRecord.id).desc())
    ).first()
