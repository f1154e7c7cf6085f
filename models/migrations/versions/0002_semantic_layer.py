"""semantic layer: suggestion scores, run mode, embedding cache

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Plain ADD/DROP COLUMN, no batch copy. Nullable columns only, so rows written before this revision (lexical) stay
valid: suggestion.lexical_score / semantic_score / carried_by,
match_run.mode, and the table embedding_cache (float32 vectors by text
fingerprint and model version).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("suggestion", sa.Column("lexical_score", sa.Float(), nullable=True))
    op.add_column("suggestion", sa.Column("semantic_score", sa.Float(), nullable=True))
    op.add_column("suggestion", sa.Column("carried_by", sa.String(length=20), nullable=True))
    op.add_column("match_run", sa.Column("mode", sa.String(length=20), nullable=True))
    op.create_table(
        "embedding_cache",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", "model_version", name=op.f("pk_embedding_cache")),
    )


def downgrade() -> None:
    op.drop_table("embedding_cache")
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch copy of
    # match_run would drop the old table, and with foreign keys on, SQLite's
    # implicit DELETE would cascade to every suggestion.
    op.drop_column("match_run", "mode")
    op.drop_column("suggestion", "carried_by")
    op.drop_column("suggestion", "semantic_score")
    op.drop_column("suggestion", "lexical_score")
