"""The collaboration workflow: departments, opinion requests, answers, 協働事業, mail outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

proposal.status becomes proposal.stage, with the city's stages. The old
statuses map to the nearest stage (reviewing → checking, matched →
negotiating, declined → not_adopted); a proposal whose NPO had been shown
マッチ成立 or 見送り keeps being shown that through a published answer, so no NPO
sees its page go back to 受付. user.email is added for the daily digest.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OLD_TO_NEW = {"reviewing": "checking", "matched": "negotiating", "declined": "not_adopted"}
_CARRIED_TEXT = {
    "negotiating": "ご提案について、担当課との協議に進んでいます。",
    "not_adopted": "今回は見送りとなりました。詳しくは市民活動支援室へお問い合わせください。",
}


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    _create_tables()
    # RENAME COLUMN, not a batch copy: on SQLite the copy drops the table, and
    # with foreign keys on that would cascade to every suggestion and decision.
    op.drop_index("ix_proposal_status", table_name="proposal")
    op.execute("ALTER TABLE proposal RENAME COLUMN status TO stage")
    op.create_index("ix_proposal_stage", "proposal", ["stage"])
    op.add_column("user", sa.Column("email", sa.String(320), nullable=False, server_default=""))
    _carry_over_statuses()


def _carry_over_statuses() -> None:
    bind = op.get_bind()
    for old, new in _OLD_TO_NEW.items():
        bind.execute(sa.text("UPDATE proposal SET stage = :new WHERE stage = :old"), {"new": new, "old": old})
    for stage, text in _CARRIED_TEXT.items():
        bind.execute(
            sa.text(
                "INSERT INTO answer (proposal_id, stage, text, written_by, updated_at, published_at, published_by) "
                "SELECT id, stage, :text, '', updated_at, updated_at, '' FROM proposal WHERE stage = :stage"
            ),
            {"text": text, "stage": stage},
        )


def _create_tables() -> None:
    op.create_table(
        "department",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("parent", sa.String(100), nullable=False),
        sa.Column("emails", sa.String(1000), nullable=False),
        sa.Column("duties", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_department"),
        sa.UniqueConstraint("name", name="uq_department_name"),
    )
    op.create_table(
        "opinion_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("link_nonce", sa.String(64), nullable=False),
        sa.Column("program_ids", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opinion", sa.String(20), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("collaboration_type", sa.String(20), nullable=True),
        sa.Column("budget_thousand_yen", sa.Integer(), nullable=True),
        sa.Column("timing", sa.String(200), nullable=False),
        sa.Column("answerer", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposal.id"], name="fk_opinion_request_proposal_id_proposal",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"],
                                name="fk_opinion_request_department_id_department", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_opinion_request"),
    )
    op.create_index("ix_opinion_request_proposal_id", "opinion_request", ["proposal_id"])
    op.create_index("ix_opinion_request_status_due", "opinion_request", ["status", "due"])
    op.create_table(
        "answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("written_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposal.id"], name="fk_answer_proposal_id_proposal",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_answer"),
    )
    op.create_index("ix_answer_proposal", "answer", ["proposal_id", "published_at"])
    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("departments", sa.String(500), nullable=False),
        sa.Column("collaboration_type", sa.String(20), nullable=False),
        sa.Column("agreement_date", sa.Date(), nullable=True),
        sa.Column("budget_thousand_yen", sa.Integer(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposal.id"], name="fk_project_proposal_id_proposal",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_project"),
        sa.UniqueConstraint("proposal_id", name="uq_project_proposal_id"),
    )
    op.create_table(
        "mail_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("to_address", sa.String(1000), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(200), nullable=True),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("opinion_request_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposal.id"], name="fk_mail_message_proposal_id_proposal",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["opinion_request_id"], ["opinion_request.id"],
                                name="fk_mail_message_opinion_request_id_opinion_request", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_mail_message"),
    )
    op.create_index("ix_mail_message_status_next", "mail_message", ["status", "next_attempt_at"])
    op.create_table(
        "mail_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["mail_id"], ["mail_message.id"], name="fk_mail_attempt_mail_id_mail_message",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_mail_attempt"),
    )
    op.create_index("ix_mail_attempt_mail_id", "mail_attempt", ["mail_id"])


def downgrade() -> None:
    op.drop_column("user", "email")
    op.drop_index("ix_proposal_stage", table_name="proposal")
    op.execute("ALTER TABLE proposal RENAME COLUMN stage TO status")
    op.create_index("ix_proposal_status", "proposal", ["status"])
    bind = op.get_bind()
    for old, new in _OLD_TO_NEW.items():
        bind.execute(sa.text("UPDATE proposal SET status = :old WHERE status = :new"), {"new": new, "old": old})
    bind.execute(sa.text("UPDATE proposal SET status = 'reviewing' WHERE status NOT IN "
                         "('received', 'reviewing', 'matched', 'declined')"))
    for table in ("mail_attempt", "mail_message", "project", "answer", "opinion_request", "department"):
        op.drop_table(table)
