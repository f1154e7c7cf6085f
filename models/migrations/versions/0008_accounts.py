"""Accounts: user.is_admin and user.session_version

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

user.is_admin marks the coordinators who manage the others at /users. Every
user that exists when this runs becomes an administrator: before this
revision every coordinator could do everything, and an office upgraded
without one admin would have nobody able to open /users (locked out). New
users start as non-admins unless created as such.

user.session_version is copied into the session cookie at login and bumped by
logout, disabling the user and a new password, so a cookie issued before
stops working at once (revocable sessions). Existing cookies hold no version
and end at the upgrade: everyone logs in once more.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with a server default: no batch copy of the table (on
    # SQLite that would drop and recreate it under its foreign keys, see 0007).
    op.add_column("user", sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("user", sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
    user = sa.table("user", sa.column("is_admin", sa.Boolean()))
    op.get_bind().execute(sa.update(user).values(is_admin=True))


def downgrade() -> None:
    op.drop_column("user", "session_version")
    op.drop_column("user", "is_admin")
