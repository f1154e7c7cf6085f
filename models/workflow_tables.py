"""The tables of the collaboration workflow, as SQLModel families: departments,
opinion requests (所見照会), answers to the NPO, 協働事業 and the mail outbox.

The city's process (事前相談 → 提案 → 所見 → 協議 → 採択 / 不採択 → 協定 → 実施 →
報告): the coordinator asks departments for their opinion (``OpinionRequest``),
writes an answer and publishes it (``Answer``; the NPO sees nothing else), and
an adopted proposal records its 協働事業 (``Project``). Every message to a
person goes through the outbox (``MailMessage``), written in the same
transaction as the change it tells of.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import field_serializer, field_validator
from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import AutoString, Field, SQLModel
from sqlmodel.main import SQLModelConfig

from corpus.text import has_control_characters
from models.clock import as_utc, utcnow
from models.labels import CollaborationType, MailStatus, Opinion, RequestStatus, Stage

BUDGET_MAX = 100_000_000  # 千円, as a proposal's budget


def _plain_text(value: object) -> object:
    if isinstance(value, str) and has_control_characters(value.replace("\n", "").replace("\r", "")):
        raise ValueError("contains control characters")
    return value


# -- Department: a 担当課 of the city ------------------------------------------------


class DepartmentBase(SQLModel):
    name: str = Field(sa_type=AutoString(length=100), unique=True)  # 担当課, as in the catalogue
    parent: str = Field(default="", sa_type=AutoString(length=100))  # 部
    emails: str = Field(default="", sa_type=AutoString(length=1000))  # メールアドレス, comma separated
    duties: str = Field(default="", sa_type=Text)  # 所掌事務
    active: bool = True


class Department(DepartmentBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def email_list(self) -> list[str]:
        return [e for e in (x.strip() for x in self.emails.split(",")) if e]


class DepartmentCreate(DepartmentBase):
    # What an import or the edit form supplies.
    name: str = Field(min_length=1, max_length=100, title="担当課")
    parent: str = Field(default="", max_length=100, title="部")
    emails: str = Field(default="", max_length=1000, title="メールアドレス")
    duties: str = Field(default="", max_length=4000, title="所掌事務")

    @field_validator("name", "parent", "emails", "duties")
    @classmethod
    def _plain(cls, value: object) -> object:
        return _plain_text(value)

    @field_validator("emails")
    @classmethod
    def _valid_emails(cls, value: str) -> str:
        parts = [p.strip() for p in value.replace("、", ",").replace(";", ",").replace(" ", ",").split(",")]
        parts = [p for p in parts if p]
        for part in parts:
            local, _, domain = part.partition("@")
            if not local or "." not in domain or any(c.isspace() for c in part):
                raise ValueError(f"{part} is not an e-mail address")
        return ", ".join(parts)


class DepartmentPublic(DepartmentBase):
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)
    id: int


# -- OpinionRequest: the coordinator asks one department for its 所見 ----------------


class OpinionAnswer(SQLModel):
    # What the department writes on its one page (or POST /api/v1/opinions/{token}).
    opinion: Opinion = Field(title="所見")
    comment: str = Field(default="", max_length=4000, title="コメント")
    collaboration_type: CollaborationType | None = Field(default=None, title="考えられる協働の形")
    budget_thousand_yen: int | None = Field(default=None, ge=0, le=BUDGET_MAX, title="概算予算")
    timing: str = Field(default="", max_length=200, title="時期")
    answerer: str = Field(default="", max_length=100, title="回答者")

    @field_validator("comment", "timing", "answerer")
    @classmethod
    def _plain(cls, value: object) -> object:
        return _plain_text(value)


class OpinionRequestBase(SQLModel):
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE", index=True)
    department_id: int = Field(foreign_key="department.id", ondelete="CASCADE")
    message: str = Field(default="", sa_type=Text)
    due: date


class OpinionRequest(OpinionRequestBase, table=True):
    __tablename__ = "opinion_request"
    __table_args__ = (Index("ix_opinion_request_status_due", "status", "due"),)

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=RequestStatus.OPEN.value, max_length=20)
    # The link's token signs (id, nonce); a new nonce would void an old link.
    link_nonce: str = Field(max_length=64)
    program_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    requested_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    reminded_at: datetime | None = None
    closed_at: datetime | None = None  # answered or withdrawn
    opinion: str | None = Field(default=None, max_length=20)
    comment: str = Field(default="", sa_type=Text)
    collaboration_type: str | None = Field(default=None, max_length=20)
    budget_thousand_yen: int | None = None
    timing: str = Field(default="", max_length=200)
    answerer: str = Field(default="", max_length=100)


class OpinionRequestCreate(SQLModel):
    # What the coordinator (or POST /api/v1/proposals/{id}/opinion-requests) supplies.
    department: str = Field(min_length=1, max_length=100, title="担当課")
    message: str = Field(default="", max_length=4000, title="依頼文")
    due: date | None = Field(default=None, title="回答期限")

    @field_validator("department", "message")
    @classmethod
    def _plain(cls, value: object) -> object:
        return _plain_text(value)


class OpinionRequestPublic(OpinionRequestBase):
    # What the API shows: never the link or its nonce.
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    id: int
    department: str
    status: RequestStatus
    program_ids: list[int]
    created_at: datetime
    closed_at: datetime | None
    opinion: Opinion | None
    comment: str
    collaboration_type: CollaborationType | None
    budget_thousand_yen: int | None
    timing: str

    @field_serializer("created_at", "closed_at")
    def _in_utc(self, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None


# -- Answer: what the NPO is told, a draft until published -----------------------


class AnswerBase(SQLModel):
    stage: str = Field(max_length=20)  # models.labels.Stage
    text: str = Field(sa_type=Text)  # 理由, 次の手順, 連絡先


class Answer(AnswerBase, table=True):
    # A proposal has at most one draft (published_at NULL); publishing stamps it
    # and the next save starts a new draft, so every published answer is kept.
    __table_args__ = (Index("ix_answer_proposal", "proposal_id", "published_at"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    written_by: str = Field(default="", max_length=200)
    updated_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None
    published_by: str = Field(default="", max_length=200)


class AnswerCreate(SQLModel):
    # What the coordinator (or PUT /api/v1/proposals/{id}/answer) supplies.
    stage: Stage = Field(title="段階")
    text: str = Field(min_length=1, max_length=4000, title="回答文")

    @field_validator("text")
    @classmethod
    def _plain(cls, value: object) -> object:
        return _plain_text(value)


class AnswerPublic(AnswerBase):
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    stage: Stage
    updated_at: datetime
    published_at: datetime | None

    @field_serializer("updated_at", "published_at")
    def _in_utc(self, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None


# -- Project: the 協働事業 an adopted proposal becomes ----------------------------------


class ProjectBase(SQLModel):
    name: str = Field(sa_type=AutoString(length=200))  # 事業名
    departments: str = Field(default="", sa_type=AutoString(length=500))  # 担当課, as in the catalogue
    collaboration_type: str = Field(default=CollaborationType.OTHER.value, max_length=20)
    agreement_date: date | None = None  # 協定締結日: counts toward the plan's target
    budget_thousand_yen: int | None = None
    period_start: date | None = None
    period_end: date | None = None


class Project(ProjectBase, table=True):
    # One per proposal: a second accepted pair of the same proposal is the same project.
    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE", unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ProjectCreate(ProjectBase):
    name: str = Field(min_length=1, max_length=200, title="協働事業名")
    departments: str = Field(default="", max_length=500, title="担当課")
    collaboration_type: CollaborationType = Field(default=CollaborationType.OTHER, title="協働の形")
    budget_thousand_yen: int | None = Field(default=None, ge=0, le=BUDGET_MAX, title="予算")

    @field_validator("name", "departments")
    @classmethod
    def _plain(cls, value: object) -> object:
        return _plain_text(value)


class ProjectPublic(ProjectBase):
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)
    id: int
    proposal_id: int


# -- MailMessage: the outbox -------------------------------------------------------


class MailMessage(SQLModel, table=True):
    # Written with the change it tells of; rendered and sent later by office.mail.
    __tablename__ = "mail_message"
    __table_args__ = (Index("ix_mail_message_status_next", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)  # receipt, answer, opinion_request, reminder, digest
    to_address: str = Field(sa_type=AutoString(length=1000))
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # A secret only this message may carry (the NPO's status link): cleared once sent.
    secret: str | None = Field(default=None, max_length=200)
    proposal_id: int | None = Field(default=None, foreign_key="proposal.id", ondelete="SET NULL")
    opinion_request_id: int | None = Field(default=None, foreign_key="opinion_request.id", ondelete="SET NULL")
    status: str = Field(default=MailStatus.PENDING.value, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    subject: str = Field(default="", sa_type=Text)
    body: str = Field(default="", sa_type=Text)
    last_error: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class MailAttempt(SQLModel, table=True):
    # One delivery attempt of one message, kept for the dashboard and the audit.
    __tablename__ = "mail_attempt"

    id: int | None = Field(default=None, primary_key=True)
    mail_id: int = Field(foreign_key="mail_message.id", ondelete="CASCADE", index=True)
    at: datetime = Field(default_factory=utcnow)
    ok: bool
    error: str = Field(default="", sa_type=Text)
