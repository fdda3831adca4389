"""Tables of the approval workflow: requests, decisions, break-glass overrides, audit log.

They live on SQLModel's one global metadata (the same as bot/store/tables.py), so alembic sees
them. Times are naive UTC, as everywhere in the store.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.store import metadata  # noqa: F401 - one metadata for alembic: import it first


class RequestState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class RequestKind(enum.StrEnum):
    CHANGE = "change"  # a pull/merge request at a head SHA
    DEPLOY = "deploy"  # a deployment of a SHA to an environment
    RETRO_REVIEW = "retro-review"  # after a break-glass override


class ApprovalRequestRecord(SQLModel, table=True):
    """One request for `group` to approve `subject` at `sha`, asked by `rules`."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        sa.UniqueConstraint(
            "subject", "sha", "basis", "group_name", "kind", name="uq_approval_request"
        ),
        sa.Index("ix_approval_requests_subject_state", "subject", "state"),
        sa.Index("ix_approval_requests_state_expires", "state", "expires_at"),
    )

    id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    kind: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    sha: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    # the base the change was shown against ("<base ref>@<merge base>"; "" for deploys)
    basis: str = Field(
        default="", sa_column=sa.Column(sa.String(400), nullable=False, server_default="")
    )
    group_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    rules: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    min_approvals: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    # who made the change / started the deploy: they may never approve it
    author_system: str | None = Field(default=None, sa_column=sa.Column(sa.String(20)))
    author: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))
    state: str = Field(
        default=RequestState.PENDING, sa_column=sa.Column(sa.String(20), nullable=False)
    )
    state_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # what the Slack message shows
    repo: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    number: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    title: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    url: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    environment: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    parent_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    # where the Slack message is, once posted
    channel: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    message_ts: str | None = Field(default=None, sa_column=sa.Column(sa.String(50)))
    created_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    expires_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    remind_at: dt.datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime))
    reminded_at: dt.datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime))
    decided_at: dt.datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime))
    decided_by_system: str | None = Field(default=None, sa_column=sa.Column(sa.String(20)))
    decided_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))

    @property
    def is_open(self) -> bool:
        return self.state == RequestState.PENDING


class ApprovalDecisionRecord(SQLModel, table=True):
    """One person's approve or reject on one request; one per person per request."""

    __tablename__ = "approval_decisions"
    __table_args__ = (
        sa.UniqueConstraint("request_id", "person", name="uq_approval_decision_person"),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    )
    request_id: str = Field(
        sa_column=sa.Column(
            sa.String(64), sa.ForeignKey("approval_requests.id"), nullable=False, index=True
        )
    )
    sha: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    actor_system: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    actor: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    person: str = Field(sa_column=sa.Column(sa.String(300), nullable=False))
    decision: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    delivery_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(300)))
    created_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


class BreakGlassRecord(SQLModel, table=True):
    """An emergency override of a gate or a require-approval verdict, at one SHA."""

    __tablename__ = "break_glass"
    __table_args__ = (sa.Index("ix_break_glass_subject_sha", "subject", "sha"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    )
    subject: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    sha: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    actor_system: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    actor: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    retro_request_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    created_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


class AuditRecord(SQLModel, table=True):
    """One audit log row. `seq` is gapless and unique, `prev_hash` unique: no forks, no gaps."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.UniqueConstraint("seq", name="uq_audit_log_seq"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_log_prev_hash"),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    )
    seq: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False, index=True))
    action: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    actor_system: str = Field(default="", sa_column=sa.Column(sa.String(20), nullable=False))
    actor: str = Field(default="", sa_column=sa.Column(sa.String(255), nullable=False))
    subject: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    sha: str = Field(default="", sa_column=sa.Column(sa.String(64), nullable=False))
    rules: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    channel: str = Field(default="", sa_column=sa.Column(sa.String(50), nullable=False))
    delivery_id: str = Field(default="", sa_column=sa.Column(sa.String(300), nullable=False))
    decision: str = Field(default="", sa_column=sa.Column(sa.String(50), nullable=False))
    detail: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    prev_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))


approval_requests = cast(sa.Table, ApprovalRequestRecord.__table__)  # type: ignore[attr-defined]
approval_decisions = cast(sa.Table, ApprovalDecisionRecord.__table__)  # type: ignore[attr-defined]
break_glass = cast(sa.Table, BreakGlassRecord.__table__)  # type: ignore[attr-defined]
audit_log = cast(sa.Table, AuditRecord.__table__)  # type: ignore[attr-defined]
