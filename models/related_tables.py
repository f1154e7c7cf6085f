"""Related and duplicate proposals: RelatedProposal (what a run or online
matching found, published like suggestions) and NotDuplicate (the
coordinator's 重複ではない, which no run writes). Re-exported by
:mod:`models.tables` (import them from there)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig

from models.clock import utcnow


class RelatedProposalBase(SQLModel):
    # Shared fields: one other proposal like this one (matcher.related.Related).
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    related_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    rank: int
    score: float  # the fused likeness in standard deviations (ranks, symmetric)
    lexical: float  # the TF-IDF cosine, 0-1
    semantic: float | None = None  # the e5 cosine (None in lexical mode)
    # The words both proposals use, heaviest first, as this proposal wrote them.
    terms: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The run's verdict: same organisation or e-mail and very close texts
    # (matcher.duplicates.likely_duplicate). A coordinator's 重複ではない or a merge
    # turns the flag off at read time (models.related), not here.
    duplicate: bool = False


class RelatedProposal(RelatedProposalBase, table=True):
    # The stored row, published as a Suggestion is (models.suggestions.visible):
    # a batch row has ``match_run_id``, an online row ``online_after_run_id``.
    __tablename__ = "related_proposal"
    __table_args__ = (
        Index("ix_related_proposal_run_proposal", "match_run_id", "proposal_id"),
        Index("ix_related_proposal_proposal", "proposal_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    match_run_id: int | None = Field(default=None, foreign_key="match_run.id", ondelete="CASCADE")
    online_after_run_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class RelatedProposalPublic(SQLModel):
    # What the API shows of a related proposal: the other proposal's id, title
    # and stage label, the scores rounded to 4 places, and the duplicate flag.
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    proposal_id: int = Field(description="the other proposal")
    receipt_number: str | None
    title: str
    stage: str
    stage_label: str
    rank: int
    score: float = Field(description="the fused likeness (standard deviations above each proposal's average); ranks")
    lexical_score: float = Field(description="the TF-IDF cosine of the two proposals, 0-1")
    semantic_score: float | None = Field(default=None, description="semantic mode: the e5 cosine; null in lexical mode")
    terms: list[str] = Field(description="the words both proposals use, heaviest first")
    likely_duplicate: bool = Field(
        description="重複の可能性: same organisation or e-mail and very close texts, not marked 重複ではない, "
        "neither merged"
    )


class NotDuplicate(SQLModel, table=True):
    # 重複ではない for one pair, the lower proposal id first; kept across runs.
    __tablename__ = "not_duplicate"
    __table_args__ = (UniqueConstraint("proposal_id", "other_id"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    other_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    actor: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
