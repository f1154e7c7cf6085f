"""accepted proposals as exemplars: suggestion.exemplar_proposal_id / exemplar_score

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Nullable columns only (rows written before stay valid); plain ADD/DROP
COLUMN, no batch copy (see 0002 for why).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("suggestion", sa.Column("exemplar_proposal_id", sa.Integer(), nullable=True))
    op.add_column("suggestion", sa.Column("exemplar_score", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("suggestion", "exemplar_score")
    op.drop_column("suggestion", "exemplar_proposal_id")
