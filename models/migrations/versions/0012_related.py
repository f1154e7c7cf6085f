"""related_proposal, not_duplicate and proposal.merged_into_id: related and duplicate proposals

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

related_proposal holds each proposal's most related other proposals, published
like suggestion (batch rows carry match_run_id, online rows
online_after_run_id); ``duplicate`` is the likely-duplicate verdict the run
computed for the pair (same organisation or e-mail, and very close texts).
not_duplicate is the coordinator's 重複ではない, one row per pair (the lower id
first), which no run writes. proposal.merged_into_id marks a proposal merged
into another (office.merging). Runs published before this revision have no
related rows: pages list none until the next rematch.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "related_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("related_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("lexical", sa.Float(), nullable=False),
        sa.Column("semantic", sa.Float(), nullable=True),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("duplicate", sa.Boolean(), nullable=False),
        sa.Column("match_run_id", sa.Integer(), nullable=True),
        sa.Column("online_after_run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposal.id"], name="fk_related_proposal_proposal_id_proposal", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["related_id"], ["proposal.id"], name="fk_related_proposal_related_id_proposal", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["match_run_id"], ["match_run.id"], name="fk_related_proposal_match_run_id_match_run", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_related_proposal"),
    )
    op.create_index("ix_related_proposal_run_proposal", "related_proposal", ["match_run_id", "proposal_id"])
    op.create_index("ix_related_proposal_proposal", "related_proposal", ["proposal_id"])
    op.create_table(
        "not_duplicate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposal.id"], name="fk_not_duplicate_proposal_id_proposal", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["other_id"], ["proposal.id"], name="fk_not_duplicate_other_id_proposal", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_not_duplicate_user_id_user", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_not_duplicate"),
        sa.UniqueConstraint("proposal_id", "other_id", name="uq_not_duplicate_proposal_id_other_id"),
    )
    # Plain ADD COLUMN, no foreign key: no batch copy of proposal (on SQLite it
    # would cascade deletes to every suggestion and decision, see 0007).
    op.add_column("proposal", sa.Column("merged_into_id", sa.Integer(), nullable=True))
    op.create_index("ix_proposal_merged_into_id", "proposal", ["merged_into_id"])


def downgrade() -> None:
    op.drop_index("ix_proposal_merged_into_id", table_name="proposal")
    op.drop_column("proposal", "merged_into_id")
    op.drop_table("not_duplicate")
    op.drop_index("ix_related_proposal_proposal", table_name="related_proposal")
    op.drop_index("ix_related_proposal_run_proposal", table_name="related_proposal")
    op.drop_table("related_proposal")
