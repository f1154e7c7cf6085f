"""The tables of kyodo-match, as SQLModel families.

Each entity has ``XBase`` (shared fields) and ``X(table=True)`` (the row),
and where the form, an import or the API needs them ``XCreate`` (what a caller
supplies) and ``XPublic`` (what the API shows: its JSON and the OpenAPI
components come from it), as in the SQLModel docs. Users, tokens and audit
events are never shown by the API, so they have no ``XPublic``. Codes are
stored in English; the Japanese labels of codes
live in :mod:`models.labels` only, those of the proposal's fields beside their
limits (``PROPOSAL_LIMITS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import computed_field, field_serializer, field_validator
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import AutoString, Field, SQLModel
from sqlmodel.main import SQLModelConfig

from corpus.text import has_control_characters
from models.clock import as_utc, utcnow
from models.labels import LABELS, CollaborationType, Stage, Verdict

# -- Program: one row of the city's catalogue, per fiscal year (年度) ---------


class ProgramBase(SQLModel):
    # Shared fields: the corpus record of one program.
    fiscal_year: int = Field(index=True)
    external_id: str = Field(max_length=100)  # the file's id (e.g. H20-01)
    name: str = Field(sa_type=Text)  # 事業名
    purpose: str = Field(default="", sa_type=Text)  # 目的
    activities: str = Field(default="", sa_type=Text)  # 取り組み内容
    department: str = Field(default="", max_length=500)  # 担当課 as written
    policy: str = Field(default="", sa_type=Text)  # 施策名
    budget: str = Field(default="", sa_type=Text)  # 予算 as written
    budget_thousand_yen: int | None = None
    section: str = Field(default="", sa_type=Text)  # 大項目
    subsection: str = Field(default="", sa_type=Text)  # 中項目
    policy_number: str = Field(default="", max_length=50)  # 施策番号
    source: str = Field(default="", sa_type=Text)  # 出典
    # キーワード: the coordinator's everyday words for the program (言い換え),
    # not part of the city's plan; the matcher reads it as a text field.
    keywords: str = Field(default="", sa_type=Text)


class Program(ProgramBase, table=True):
    # The stored row; (fiscal_year, external_id) is the catalogue key. The
    # import's flip finds the rows it (de)activates by (active, fiscal_year).
    __table_args__ = (UniqueConstraint("fiscal_year", "external_id"),
                      Index("ix_program_active_fiscal_year", "active", "fiscal_year"))

    id: int | None = Field(default=None, primary_key=True)
    source_file: str = Field(default="", max_length=500)
    active: bool = Field(default=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The import that staged the row; seen only once it is published
    # (models.program_imports). No foreign key: a plain ADD COLUMN on SQLite.
    import_id: int | None = Field(default=None, index=True)


class ProgramCreate(ProgramBase):
    # What an import supplies for one row.
    source_file: str = ""


class ProgramPublic(ProgramBase):
    # What the API shows of a program: the catalogue record and whether it is
    # active, without the plan's headings and the source (kept for the console).
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    id: int
    section: str = Field(default="", exclude=True)
    subsection: str = Field(default="", exclude=True)
    policy_number: str = Field(default="", exclude=True)
    source: str = Field(default="", exclude=True)
    keywords: str = Field(
        default="",
        description="The coordinator's everyday words for the program (キーワード), one text; "
        "not part of the city's plan.",
    )
    active: bool


# -- Proposal: a citizen or NPO proposal (市民提案) ---------------------------


@dataclass(frozen=True)
class FieldRule:
    """What one field of a proposal accepts, and its Japanese label."""

    label: str  # 団体名: the form, its confirmation page and the import's messages say it
    max_length: int | None = None  # in characters
    minimum: int | None = None
    maximum: int | None = None
    unit: str = ""  # 千円: shown after the label and after the value
    optional: bool = False  # the form and the API accept it empty (a paper record needs only title and body)


# The one table of the proposal's fields, in the form's order. ProposalCreate
# enforces it, so the form, POST /api/v1/proposals and `kyodo proposals import`
# refuse the same input; the form, its confirmation page, the OpenAPI document
# and the import's messages read their limits and labels here.
# The database columns (ProposalBase) keep their widths, wider than these
# limits: no migration, and rows stored before the limits may be longer, so
# what is shown (ProposalPublic) is not bounded by them.
PROPOSAL_LIMITS: dict[str, FieldRule] = {
    "organization": FieldRule("団体名", max_length=100),
    "representative": FieldRule("代表者名", max_length=50),
    "email": FieldRule("メールアドレス", max_length=254),
    "phone": FieldRule("電話番号", max_length=20, optional=True),
    "title": FieldRule("提案タイトル", max_length=100),
    "body": FieldRule("提案内容", max_length=8000),
    "expected_effect": FieldRule("期待される効果", max_length=4000),
    "collaboration_type": FieldRule("希望する協働の形"),
    # 千円: one hundred billion yen is no NPO proposal.
    "budget_thousand_yen": FieldRule("概算予算", minimum=0, maximum=100_000_000, unit="千円", optional=True),
}
EXTERNAL_REF_LENGTH = 100  # an import's own id: the column's width


class ProposalBase(SQLModel):
    # Shared fields: what the NPO writes on the form, as stored. The widths are
    # the columns' (sa_type), not what is accepted: that is PROPOSAL_LIMITS.
    organization: str = Field(default="", sa_type=AutoString(length=200))
    representative: str = Field(default="", sa_type=AutoString(length=200))
    email: str = Field(default="", sa_type=AutoString(length=320))
    phone: str = Field(default="", sa_type=AutoString(length=50))
    title: str = Field(sa_type=AutoString(length=500))
    body: str = Field(sa_type=Text)
    expected_effect: str = Field(default="", sa_type=Text)
    collaboration_type: str = Field(default=CollaborationType.OTHER.value, sa_type=AutoString(length=20))
    budget_thousand_yen: int | None = None


class Proposal(ProposalBase, table=True):
    # The stored row, with its receipt number and private status token (hashed).
    id: int | None = Field(default=None, primary_key=True)
    receipt_number: str | None = Field(default=None, max_length=20, unique=True)
    status_token_hash: str = Field(max_length=64, unique=True)
    # The coordinator's stage (models.labels.Stage); the NPO sees the stage of
    # the last published answer instead (models.workflow_tables.Answer).
    stage: str = Field(default=Stage.RECEIVED.value, max_length=20, index=True)
    # Bumped by every decision and undo (compare-and-set): a decision made on an
    # older page is refused (office.commands.StaleDecision).
    version: int = 0
    external_ref: str | None = Field(default=None, max_length=EXTERNAL_REF_LENGTH, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Set when merged into another proposal (office.merging); no foreign key:
    # a plain ADD COLUMN on SQLite (migration 0012).
    merged_into_id: int | None = Field(default=None, index=True)


def _bounded(name: str) -> Any:
    """ProposalBase's field ``name`` (its default) within PROPOSAL_LIMITS[name];
    a field without a default must not be empty."""
    rule, base = PROPOSAL_LIMITS[name], ProposalBase.model_fields[name]
    required = base.is_required()
    return Field(
        default=... if required else base.default,
        title=rule.label,
        min_length=1 if required else None,
        max_length=rule.max_length,
        ge=rule.minimum,
        le=rule.maximum,
    )


class ProposalCreate(ProposalBase):
    # What the public form, the API or an import supplies, within PROPOSAL_LIMITS
    # and without control characters; a paper record needs only title and body.
    organization: str = _bounded("organization")
    representative: str = _bounded("representative")
    email: str = _bounded("email")
    phone: str = _bounded("phone")
    title: str = _bounded("title")
    body: str = _bounded("body")
    expected_effect: str = _bounded("expected_effect")
    collaboration_type: CollaborationType = _bounded("collaboration_type")
    budget_thousand_yen: int | None = _bounded("budget_thousand_yen")
    external_ref: str | None = Field(default=None, max_length=EXTERNAL_REF_LENGTH)

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        if isinstance(value, str) and has_control_characters(value):
            raise ValueError("contains control characters")
        return value


class ProposalPublic(ProposalBase):
    # What the coordinator and the API see (never the token), not bounded by
    # PROPOSAL_LIMITS (older rows may be longer). As JSON: times in UTC with
    # Z, an empty phone as null, and the stage's Japanese label.
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    id: int
    receipt_number: str | None
    stage: Stage
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stage_label(self) -> str:
        return LABELS[self.stage]

    @field_serializer("created_at", "updated_at")
    def _in_utc(self, value: datetime) -> datetime:
        return as_utc(value)  # stored times are naive UTC (aware on some drivers)

    @field_serializer("phone")
    def _phone_or_null(self, value: str) -> str | None:
        return value or None


# -- Decision: the coordinator's verdict, append-only ------------------------


class DecisionBase(SQLModel):
    # Shared fields: one verdict on one pair.
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    program_id: int = Field(foreign_key="program.id", ondelete="CASCADE")
    verdict: str = Field(max_length=20)  # models.labels.Verdict
    note: str = Field(default="", sa_type=Text)


class Decision(DecisionBase, table=True):
    # The stored row; a change of mind is a new row, nothing is overwritten.
    __table_args__ = (Index("ix_decision_pair", "proposal_id", "program_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    decided_by: str = Field(default="", max_length=200)
    decided_at: datetime = Field(default_factory=utcnow)
    # Set on an undo row: the decision it undid (undo is a stack, office.commands.undo).
    undoes_id: int | None = None


class DecisionCreate(DecisionBase):
    # What the console supplies.
    user_id: int | None = None
    decided_by: str = ""
    undoes_id: int | None = None

    def verdict_is_known(self) -> bool:
        return self.verdict in {v.value for v in Verdict}


class DecisionPublic(DecisionBase):
    # What the history and the API show; as JSON, decided_at in UTC with Z.
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    id: int
    verdict: Verdict = Field(description="withdrawn: an undo that left the pair undecided")
    decided_by: str
    decided_at: datetime

    @field_serializer("decided_at")
    def _in_utc(self, value: datetime) -> datetime:
        return as_utc(value)  # stored times are naive UTC (aware on some drivers)


# -- User and ApiToken: coordinators and their API keys -----------------------


class UserBase(SQLModel):
    # Shared fields: a coordinator of the support office (支援室).
    username: str = Field(max_length=150, unique=True)
    display_name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=320)  # the daily digest goes here
    is_active: bool = True
    # Manages the coordinators at /users; the office keeps at least one active.
    is_admin: bool = False


class User(UserBase, table=True):
    # The stored row: a password hash only.
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    # Copied into the session cookie at login; bumping it (logout, disable, a
    # new password) makes every cookie issued before stop working at once.
    session_version: int = 0


class UserCreate(UserBase):
    # What an administrator supplies (the hash is computed by the web layer).
    password_hash: str


class ApiTokenBase(SQLModel):
    # Shared fields: a named API key.
    name: str = Field(max_length=200)


class ApiToken(ApiTokenBase, table=True):
    __tablename__ = "api_token"
    # The stored row: the token's hash only; revoking sets revoked_at.
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ApiTokenCreate(ApiTokenBase):
    # What the console supplies.
    user_id: int | None = None


# -- AuditEvent: who did what, for decisions and imports ----------------------


class AuditEventBase(SQLModel):
    # Shared fields: one event.
    action: str = Field(max_length=50, index=True)  # decision, programs.import, ...
    entity: str = Field(default="", max_length=50)
    entity_id: str = Field(default="", max_length=100)
    actor: str = Field(default="", max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AuditEvent(AuditEventBase, table=True):
    __tablename__ = "audit_event"
    # The stored row.
    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    at: datetime = Field(default_factory=utcnow, index=True)


# The matcher's runs and what they write, in a module of their own; imported
# here so that every table has this one import path.
from models.import_tables import ProgramChange, ProgramImport  # noqa: E402
from models.related_tables import NotDuplicate, RelatedProposal, RelatedProposalPublic  # noqa: E402
from models.run_tables import (  # noqa: E402
    BatchLock,
    EmbeddingCache,
    MatchOutcome,
    MatchRun,
    MatchRunPublic,
    Suggestion,
    SuggestionItem,
    SuggestionPublic,
)
from models.theme_tables import ProjectProposal, Theme, ThemeMember  # noqa: E402, F401
from models.workflow_tables import (  # noqa: E402
    Answer,
    AnswerCreate,
    AnswerPublic,
    Department,
    DepartmentCreate,
    DepartmentPublic,
    MailAttempt,
    MailMessage,
    OpinionAnswer,
    OpinionRequest,
    OpinionRequestCreate,
    OpinionRequestPublic,
    Project,
    ProjectCreate,
    ProjectPublic,
)

__all__ = [
    "Answer", "AnswerCreate", "AnswerPublic", "Department", "DepartmentCreate", "DepartmentPublic",
    "MailAttempt", "MailMessage", "OpinionAnswer", "OpinionRequest", "OpinionRequestCreate",
    "OpinionRequestPublic", "Project", "ProjectCreate", "ProjectPublic",
    "ApiToken", "ApiTokenCreate", "AuditEvent", "AuditEventBase",
    "BatchLock", "Decision", "DecisionBase", "DecisionCreate", "DecisionPublic", "EmbeddingCache",
    "MatchOutcome", "MatchRun", "MatchRunPublic", "NotDuplicate", "RelatedProposal", "RelatedProposalPublic",
    "Program", "ProgramBase", "ProgramChange", "ProgramCreate",
    "ProgramImport", "ProgramPublic",
    "Proposal", "ProposalBase", "ProposalCreate", "ProposalPublic", "Suggestion", "SuggestionItem",
    "SuggestionPublic", "User", "UserBase", "UserCreate", "utcnow",
]
