"""covering index for the review queue's score sort

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

The queue sorted by score aggregates every published suggestion per proposal
(best coalesce(lexical_score, score), any is_new). With the scores in the
index the aggregate is an index-only scan. The new index starts with the
columns of ix_suggestion_run_proposal, which it replaces.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ["match_run_id", "proposal_id", "lexical_score", "score", "is_new"]


def upgrade() -> None:
    op.create_index("ix_suggestion_run_proposal_scores", "suggestion", COLUMNS, unique=False)
    op.drop_index("ix_suggestion_run_proposal", table_name="suggestion")


def downgrade() -> None:
    op.create_index("ix_suggestion_run_proposal", "suggestion", ["match_run_id", "proposal_id"], unique=False)
    op.drop_index("ix_suggestion_run_proposal_scores", table_name="suggestion")
