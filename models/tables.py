"""The tables of kyodo-match, as SQLModel families.

Each entity has ``XBase`` (shared fields), ``X(table=True)`` (the row),
``XCreate`` (what a caller supplies) and ``XPublic`` (what is shown), as in
the SQLModel docs. Codes are stored in English; the Japanese labels live in
:mod:`models.labels` only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.labels import CollaborationType, ProposalStatus, RunStatus, Verdict

# Named constraints, so that migrations can refer to them on both backends.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, time-zone aware in UTC (SQLModel's datetime columns require it)."""
    return datetime.now(UTC)


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
    # The stored row; (fiscal_year, external_id) is the catalogue key.
    __table_args__ = (UniqueConstraint("fiscal_year", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source_file: str = Field(default="", max_length=500)
    active: bool = Field(default=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ProgramCreate(ProgramBase):
    # What an import supplies for one row.
    source_file: str = ""


class ProgramPublic(ProgramBase):
    # What the console and API show.
    id: int
    active: bool
    source_file: str
    updated_at: datetime


# -- Proposal: a citizen or NPO proposal (市民提案) ---------------------------


class ProposalBase(SQLModel):
    # Shared fields: what the NPO writes on the form.
    organization: str = Field(default="", max_length=200)
    representative: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=320)
    phone: str = Field(default="", max_length=50)
    title: str = Field(max_length=500)
    body: str = Field(sa_type=Text)
    expected_effect: str = Field(default="", sa_type=Text)
    collaboration_type: str = Field(default=CollaborationType.OTHER.value, max_length=20)
    budget_thousand_yen: int | None = None


class Proposal(ProposalBase, table=True):
    # The stored row, with its receipt number and private status token (hashed).
    id: int | None = Field(default=None, primary_key=True)
    receipt_number: str | None = Field(default=None, max_length=20, unique=True)
    status_token_hash: str = Field(max_length=64, unique=True)
    status: str = Field(default=ProposalStatus.RECEIVED.value, max_length=20, index=True)
    external_ref: str | None = Field(default=None, max_length=100, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ProposalCreate(ProposalBase):
    # What the public form, the API or an import supplies.
    external_ref: str | None = None


class ProposalPublic(ProposalBase):
    # What the coordinator sees (never the token).
    id: int
    receipt_number: str | None
    status: str
    created_at: datetime
    updated_at: datetime


# -- MatchRun: one nightly rematch ------------------------------------------


class MatchRunBase(SQLModel):
    # Shared fields: what a run reports.
    status: str = Field(default=RunStatus.RUNNING.value, max_length=20, index=True)
    n_proposals: int = 0
    n_programs: int = 0
    n_suggestions: int = 0
    n_new: int = 0
    duration_seconds: float | None = None
    fingerprint: str = Field(default="", max_length=64)  # corpus + parameters of the index
    mode: str | None = Field(default=None, max_length=20)  # lexical or semantic: what ran
    error: str | None = Field(default=None, sa_type=Text)


class MatchRun(MatchRunBase, table=True):
    # The stored row; ``host``/``pid`` say who runs it (stale detection).
    __tablename__ = "match_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    host: str = Field(default="", max_length=255)
    pid: int | None = None
    top_k: int = 5


class MatchRunPublic(MatchRunBase):
    # What the console shows.
    id: int
    started_at: datetime
    finished_at: datetime | None


# -- Suggestion: a ranked program for a proposal ----------------------------


class SuggestionBase(SQLModel):
    # Shared fields: one ranked pair and its reasons.
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    program_id: int = Field(foreign_key="program.id", ondelete="CASCADE")
    score: float
    rank: int
    # [[term, weight, field], ...]: the shared terms, their weights add up to score.
    terms: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    is_new: bool = False  # pair absent from the previously published suggestions
    kept_by_decision: bool = False  # accepted pair kept although out of the top-k
    # Semantic mode only (None in lexical mode): score is then the fused score.
    lexical_score: float | None = None  # TF-IDF cosine, the sum of the terms' weights
    semantic_score: float | None = None  # e5 cosine
    # "semantic": placed by the embedding; "exemplar": by its likeness to a proposal accepted for the program
    carried_by: str | None = Field(default=None, max_length=20)
    # The nearest proposal already accepted for the program, and its e5 cosine
    # with this one. A plain id, no foreign key: an explanation, not a relation.
    exemplar_proposal_id: int | None = None
    exemplar_score: float | None = None


class Suggestion(SuggestionBase, table=True):
    # The stored row. A batch row has ``match_run_id``; an online row has none
    # and ``online_after_run_id`` = the newest run id when it was made.
    __table_args__ = (
        # Covers the queue's best-score aggregate (models.review._best_scores:
        # per run, per proposal, max of coalesce(lexical_score, score), max of
        # is_new), so sorting the queue by score reads the index, not the rows.
        Index("ix_suggestion_run_proposal_scores", "match_run_id", "proposal_id", "lexical_score", "score", "is_new"),
        Index("ix_suggestion_proposal", "proposal_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    match_run_id: int | None = Field(default=None, foreign_key="match_run.id", ondelete="CASCADE")
    online_after_run_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class SuggestionPublic(SuggestionBase):
    # What the review screen shows.
    id: int
    match_run_id: int | None


# -- EmbeddingCache: e5 vectors by text fingerprint and model version -------


class EmbeddingCache(SQLModel, table=True):
    # One vector per (text fingerprint, model version): the rematch embeds only
    # texts not found here. ``vector`` is float32 bytes (384 values).
    __tablename__ = "embedding_cache"

    fingerprint: str = Field(primary_key=True, max_length=64)  # matcher.semantic.text_fingerprint
    model_version: str = Field(primary_key=True, max_length=100)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


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


class DecisionCreate(DecisionBase):
    # What the console supplies.
    user_id: int | None = None
    decided_by: str = ""

    def verdict_is_known(self) -> bool:
        return self.verdict in {v.value for v in Verdict}


class DecisionPublic(DecisionBase):
    # What the history shows.
    id: int
    decided_by: str
    decided_at: datetime


# -- User and ApiToken: coordinators and their API keys -----------------------


class UserBase(SQLModel):
    # Shared fields: a coordinator of the support office (支援室).
    username: str = Field(max_length=150, unique=True)
    display_name: str = Field(default="", max_length=200)
    is_active: bool = True


class User(UserBase, table=True):
    # The stored row: a password hash only.
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class UserCreate(UserBase):
    # What an administrator supplies (the hash is computed by the web layer).
    password_hash: str


class UserPublic(UserBase):
    # What is shown.
    id: int


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


class ApiTokenPublic(ApiTokenBase):
    # What is listed (never the token).
    id: int
    created_at: datetime
    revoked_at: datetime | None


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


class AuditEventPublic(AuditEventBase):
    # What the audit page shows.
    id: int
    at: datetime


# -- BatchLock: one row per batch job, the lock that works on both backends ----


class BatchLock(SQLModel, table=True):
    # Taken by an atomic UPDATE ... WHERE holder IS NULL OR heartbeat is stale.
    __tablename__ = "batch_lock"

    name: str = Field(primary_key=True, max_length=50)
    holder: str | None = Field(default=None, max_length=100)
    host: str = Field(default="", max_length=255)
    pid: int | None = None
    acquired_at: datetime | None = None
    heartbeat_at: datetime | None = None
