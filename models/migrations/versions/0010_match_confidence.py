"""match_outcome.confidence and ambiguous: the matcher's 高 / 中 / 低 and its ambiguity notice, stored beside its verdict

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Outcomes written before have no level (NULL): pages show none for them until
the next rematch writes one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("match_outcome", sa.Column("confidence", sa.String(length=8), nullable=True))
    op.add_column(
        "match_outcome", sa.Column("ambiguous", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    op.drop_column("match_outcome", "ambiguous")
    op.drop_column("match_outcome", "confidence")
