"""decision.undoes_id and proposal.version: undo as a stack, decisions checked against the version they were made on

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

An undo row names the decision it undid (undoes_id), so each undo steps one
decision further back and never re-applies one; rows written before have no
mark and count as ordinary decisions. proposal.version is bumped by every
decision and undo with a compare-and-set: a form made on an older version is
refused instead of silently voiding another coordinator's decision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy: on SQLite a copy of proposal would
    # cascade its deletes to every suggestion and decision; see 0007).
    op.add_column("decision", sa.Column("undoes_id", sa.Integer(), nullable=True))
    op.add_column("proposal", sa.Column("version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("proposal", "version")
    op.drop_column("decision", "undoes_id")
