"""The matcher's runs and what they write: MatchRun, Suggestion, MatchOutcome,
the EmbeddingCache, and the BatchLock that keeps one rematch at a time.
Re-exported by :mod:`models.tables` (import them from there)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import computed_field, field_serializer
from sqlalchemy import JSON, Column, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig

from models.clock import as_utc, utcnow
from models.labels import RunStatus

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
    # What the API shows of a run (not the index's fingerprint nor the mode);
    # as JSON, times in UTC with Z.
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    id: int
    status: RunStatus
    fingerprint: str = Field(default="", exclude=True)
    mode: str | None = Field(default=None, exclude=True)
    started_at: datetime
    finished_at: datetime | None

    @field_serializer("started_at")
    def _started_in_utc(self, value: datetime) -> datetime:
        return as_utc(value)  # stored times are naive UTC (aware on some drivers)

    @field_serializer("finished_at")
    def _finished_in_utc(self, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


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


# The kinds of a shared term (matcher.results.Term.kind). office.rows.terms
# stores [term, weight, field, kind, lemma], kind left out when it is "word";
# rows stored before kinds existed are [term, weight, field] with a lemma as
# term, and web.highlight.stored_terms infers theirs (the one place: what the
# API shows goes through it).
TermKind = Literal["word", "keyword", "compound", "kanji", "function"]
TERM_KINDS: tuple[str, ...] = get_args(TermKind)


class SuggestionTerm(SQLModel):
    # One shared term of a suggestion, as shown: its weight, the program's field and its kind.
    term: str
    weight: float
    field: str
    kind: TermKind = Field(
        description="word (a word of the proposal), keyword (found in the program's キーワード), compound "
        "(two nouns joined, 市民活動), kanji (one kanji the pair shares, when it shares no word), function "
        "(a function word; only in suggestions stored before kinds existed)",
    )


def term_of(row: list[Any]) -> SuggestionTerm:
    """A stored term row ([term, weight, field] or [term, weight, field, kind, ...])
    as shown; a row without a kind is a word, as office.rows.terms writes it."""
    kind = str(row[3]) if len(row) > 3 else "word"
    return SuggestionTerm.model_validate(
        {"term": row[0], "weight": row[1], "field": row[2], "kind": kind if kind in TERM_KINDS else "word"})


class SuggestionExemplar(SQLModel):
    # The nearest proposal already accepted for the program, as shown.
    proposal_id: int
    score: float | None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class SuggestionPublic(SuggestionBase):
    # What the API shows of a suggestion (its proposal is the request's): scores
    # rounded to 4 places, the terms as objects, the exemplar as one object.
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    proposal_id: int = Field(exclude=True)
    score: float = Field(
        description="the TF-IDF cosine; in semantic mode the fused score (a weighted sum of "
        "z-scores that ranks one proposal's programs, not comparable across proposals)",
    )
    is_new: bool = Field(default=False, description="pair absent from the previous run")
    lexical_score: float | None = Field(
        default=None,
        description="semantic mode: the TF-IDF cosine (the sum of the terms' weights); null in lexical mode",
    )
    semantic_score: float | None = Field(
        default=None, description="semantic mode: the e5 embedding cosine; null in lexical mode"
    )
    carried_by: Literal["lexical", "semantic", "exemplar"] | None = Field(
        default=None,
        description="semantic mode: \"semantic\" (意味的に近い) when the embedding placed the program "
        "higher than TF-IDF alone would have, so the shared terms do not explain it; \"exemplar\" "
        "(採用済みの提案に近い) when its likeness to a proposal already accepted for the program did; "
        "null in lexical mode",
    )
    exemplar_proposal_id: int | None = Field(default=None, exclude=True)
    exemplar_score: float | None = Field(default=None, exclude=True)

    @computed_field(  # type: ignore[prop-decorator]
        description="semantic mode: the nearest proposal already accepted for this program "
        "and the e5 cosine of the two proposals; null when the program has none",
    )
    @property
    def exemplar(self) -> SuggestionExemplar | None:
        if self.exemplar_proposal_id is None:
            return None
        return SuggestionExemplar(proposal_id=self.exemplar_proposal_id, score=_rounded(self.exemplar_score))

    @field_serializer("terms")
    def _terms(self, terms: list[Any]) -> list[SuggestionTerm]:
        return [term_of(t) for t in terms]

    @field_serializer("score")
    def _score(self, value: float) -> float:
        return round(value, 4)

    @field_serializer("lexical_score", "semantic_score")
    def _round_scores(self, value: float | None) -> float | None:
        return _rounded(value)


class SuggestionItem(SuggestionPublic):
    # A suggestion as the API lists it: with its program's name and department
    # ("" when the program is gone) and the pair's standing decision, if any.
    program_name: str
    department: str
    decision: Literal["accepted", "rejected", "deferred"] | None


# -- EmbeddingCache: e5 vectors by text fingerprint and model version -------


class EmbeddingCache(SQLModel, table=True):
    # One vector per (text fingerprint, model version): the rematch embeds only
    # texts not found here. ``vector`` is float32 bytes (384 values).
    __tablename__ = "embedding_cache"

    fingerprint: str = Field(primary_key=True, max_length=64)  # matcher.semantic.text_fingerprint
    model_version: str = Field(primary_key=True, max_length=100)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


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


# -- MatchOutcome: what the matcher concluded for one proposal ----------------


class MatchOutcome(SQLModel, table=True):
    # One row per proposal and run (or online, as for suggestions, with the same
    # publication rule: models.suggestions.visible): the best scores over all
    # programs that the matcher's no_match rule read, and its verdict. Stored
    # so that pages show what the matcher computed instead of re-deriving it.
    __tablename__ = "match_outcome"
    __table_args__ = (
        Index("ix_match_outcome_run_proposal", "match_run_id", "proposal_id"),
        Index("ix_match_outcome_proposal", "proposal_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    match_run_id: int | None = Field(default=None, foreign_key="match_run.id", ondelete="CASCADE")
    online_after_run_id: int | None = None
    best_lexical: float | None = None  # TF-IDF cosine of the best program
    best_semantic: float | None = None  # e5 cosine of the best program (semantic mode)
    best_exemplar: float | None = None  # e5 cosine of the nearest accepted proposal
    no_match: bool = False  # 該当なしの可能性: no program is a credible partner
    # matcher.confidence: "high" / "medium" / "low" (low exactly when no_match);
    # None for outcomes stored before levels existed.
    confidence: str | None = Field(default=None, max_length=8)
    ambiguous: bool = False  # the first two programs are a toss-up between departments
    created_at: datetime = Field(default_factory=utcnow)
