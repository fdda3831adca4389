"""The SQLModel tables (Alembic's migrations must match them: a test checks) and the
one metadata every table lives on. Times are naive UTC everywhere."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class DeliveryRecord(SQLModel, table=True):
    """One webhook delivery in the inbox; its id is `forge:delivery-id`."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.Index("ix_deliveries_claim", "state", "available_at"),
        sa.Index("ix_deliveries_subject_state", "subject", "state"),
        # Covers SQLite's claim: the row holds the body, so reading `subject` or
        # `lease_until` from the row walks 25 KB of overflow pages per due delivery.
        sa.Index(
            "ix_deliveries_due",
            "state",
            "available_at",
            "received_at",
            "subject",
            "lease_until",
            "id",
        ),
    )

    id: str = Field(sa_column=sa.Column(sa.String(300), primary_key=True))
    forge: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    delivery_id: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    event: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    headers: dict[str, str] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    body: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    subject: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    state: str = Field(default="queued", sa_column=sa.Column(sa.String(20), nullable=False))
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    available_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    lease_until: dt.datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime))
    leased_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    received_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    processed_at: dt.datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime))


class EvaluationRecord(SQLModel, table=True):
    """A verdict as published; `token` makes the details page URL unguessable."""

    __tablename__ = "evaluations"

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    )
    token: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    forge: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.String(500), nullable=False, index=True))
    repo: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    number: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    base_sha: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    head_sha: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    decision: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    verdict: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    delivery_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(300)))
    created_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


class SubjectHead(SQLModel, table=True):
    """The newest head commit seen per subject, so a stale delivery never overwrites it."""

    __tablename__ = "subject_heads"

    subject: str = Field(sa_column=sa.Column(sa.String(500), primary_key=True))
    head_sha: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    received_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))
    updated_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


class BaseChange(SQLModel, table=True):
    """Each time a head was shown against another base (`<base ref>@<merge base>`): an
    approval binds to the head and the base it was shown against."""

    __tablename__ = "base_changes"
    __table_args__ = (sa.Index("ix_base_changes_subject_head", "subject", "head_sha", "id"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    )
    subject: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    head_sha: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    basis: str = Field(sa_column=sa.Column(sa.String(400), nullable=False))
    seen_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime, nullable=False))


metadata = SQLModel.metadata

#: Modules that define more tables on the same metadata; alembic and the schema checks
#: import them so that `metadata` is the whole schema.
MODEL_MODULES = ("bot.approvals.models",)


def load_models() -> sa.MetaData:
    """Import every module that defines tables, and return the complete metadata."""
    import importlib

    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return metadata


deliveries = cast(sa.Table, DeliveryRecord.__table__)  # type: ignore[attr-defined]
evaluations = cast(sa.Table, EvaluationRecord.__table__)  # type: ignore[attr-defined]
subject_heads = cast(sa.Table, SubjectHead.__table__)  # type: ignore[attr-defined]
base_changes = cast(sa.Table, BaseChange.__table__)  # type: ignore[attr-defined]


def utcnow() -> dt.datetime:
    """Naive UTC: what every timestamp column holds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
