"""theme, theme_member and project_proposal: themes of open proposals; a joint 協働事業

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

theme holds the groups of open proposals the nightly rematch finds (its label,
kept once the coordinator renames it); theme_member puts a proposal in one
theme (``pinned`` when the coordinator put it there: no run moves it).
project_proposal links a joint 協働事業 to each of its proposals (the lead,
project.proposal_id, included). Nothing existing changes: a database of
0012 has no themes until the next rematch, and its projects are single ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _stamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "theme",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("label_by_coordinator", sa.Boolean(), nullable=False),
        _stamp("created_at"),
        _stamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_theme"),
    )
    op.create_table(
        "theme_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("theme_id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["theme_id"], ["theme.id"], name="fk_theme_member_theme_id_theme", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposal.id"], name="fk_theme_member_proposal_id_proposal", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_theme_member"),
        sa.UniqueConstraint("proposal_id", name="uq_theme_member_proposal_id"),
    )
    op.create_index("ix_theme_member_theme_id", "theme_member", ["theme_id"])
    op.create_table(
        "project_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        _stamp("created_at"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name="fk_project_proposal_project_id_project", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposal.id"], name="fk_project_proposal_proposal_id_proposal", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_project_proposal"),
        sa.UniqueConstraint("proposal_id", name="uq_project_proposal_proposal_id"),
    )
    op.create_index("ix_project_proposal_project_id", "project_proposal", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_project_proposal_project_id", table_name="project_proposal")
    op.drop_table("project_proposal")
    op.drop_index("ix_theme_member_theme_id", table_name="theme_member")
    op.drop_table("theme_member")
    op.drop_table("theme")
