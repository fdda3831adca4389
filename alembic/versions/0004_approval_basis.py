"""approvals bind to the base a change was shown against

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 17:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "base_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=400), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "ix_base_changes_subject_head", "base_changes", ["subject", "head_sha", "id"], unique=False
    )
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("basis", sa.String(length=400), nullable=False, server_default="")
        )
        batch_op.drop_constraint("uq_approval_request", type_="unique")
        batch_op.create_unique_constraint(
            "uq_approval_request", ["subject", "sha", "basis", "group_name", "kind"]
        )


def downgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_constraint("uq_approval_request", type_="unique")
        batch_op.create_unique_constraint(
            "uq_approval_request", ["subject", "sha", "group_name", "kind"]
        )
        batch_op.drop_column("basis")
    op.drop_index("ix_base_changes_subject_head", table_name="base_changes")
    op.drop_table("base_changes")
