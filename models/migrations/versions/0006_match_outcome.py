"""match_outcome: the matcher's no_match verdict and best scores per proposal and run

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A new table, published like suggestion (batch rows carry match_run_id, online
rows online_after_run_id). Runs published before this revision have no
outcome rows: pages then show no 該当なし flag until the next rematch.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "match_outcome",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("match_run_id", sa.Integer(), nullable=True),
        sa.Column("online_after_run_id", sa.Integer(), nullable=True),
        sa.Column("best_lexical", sa.Float(), nullable=True),
        sa.Column("best_semantic", sa.Float(), nullable=True),
        sa.Column("best_exemplar", sa.Float(), nullable=True),
        sa.Column("no_match", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposal.id"], name="fk_match_outcome_proposal_id_proposal", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["match_run_id"], ["match_run.id"], name="fk_match_outcome_match_run_id_match_run", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_match_outcome"),
    )
    op.create_index("ix_match_outcome_run_proposal", "match_outcome", ["match_run_id", "proposal_id"])
    op.create_index("ix_match_outcome_proposal", "match_outcome", ["proposal_id"])


def downgrade() -> None:
    op.drop_index("ix_match_outcome_proposal", table_name="match_outcome")
    op.drop_index("ix_match_outcome_run_proposal", table_name="match_outcome")
    op.drop_table("match_outcome")
