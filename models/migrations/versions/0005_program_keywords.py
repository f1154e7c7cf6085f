"""program.keywords: the coordinator's everyday words for a program

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

NOT NULL with an empty default, so existing programs have no keywords and
match as before; plain ADD/DROP COLUMN (see 0002).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("program", sa.Column("keywords", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("program", "keywords")
