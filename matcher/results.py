"""What the matcher returns: plain dataclasses that serialize to the JSON of
``kyodo match`` and the API."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# The program field a shared term occurs in, by matcher field name.
FIELD_LABELS = {
    "name": "事業名",
    "purpose": "目的",
    "activities": "取り組み内容",
    "policy": "施策名",
    "keywords": "キーワード",
}


class Term(NamedTuple):
    """A term shared by a proposal and a program (a named tuple: hundreds of
    thousands are made in a batch, and a frozen dataclass costs twice as much).

    ``term`` is written as the proposal wrote it (子ども, ため, 併せる: the
    text's own spelling, uninflected; the kanji itself for a single-kanji
    feature), ``lemma`` is the matcher's term (子供, 為, 合わせる, 字:災; ""
    when it is ``term``). ``kind`` is ``"word"``, ``"keyword"`` (found in the
    program's キーワード), ``"compound"`` (a joined noun bigram), ``"kanji"``
    (a single-kanji feature) or ``"function"`` (a function word, never
    listed in a match). ``weight`` is its contribution to the cosine score:
    the product of its weight in the two L2-normalized vectors, so a pair's
    term weights add up to the pair's TF-IDF cosine.
    """

    term: str
    weight: float
    field: str
    kind: str = "word"
    lemma: str = ""


@dataclass(frozen=True)
class ProgramMatch:
    """One ranked program.

    In lexical mode ``score`` is the TF-IDF cosine and the three optional
    fields are None. With the semantic layer (``matcher.semantic``), ``score``
    is the fused score, ``lexical_score`` the TF-IDF cosine (the ``terms``'
    weights plus ``other_weight``), ``semantic_score`` the e5 cosine, and ``carried_by``
    is ``"semantic"`` when the embedding placed the program higher than
    TF-IDF alone would have (the shared terms do not explain its place),
    ``"exemplar"`` when what placed it there is its likeness to a proposal
    already accepted for the program, else ``"lexical"``. ``exemplar_id`` is
    the id of the nearest such accepted proposal and ``exemplar_score`` its
    e5 cosine with this one (None when the program has none).
    """

    program_id: str
    program_name: str
    department: str
    score: float
    terms: list[Term] = field(default_factory=list)
    lexical_score: float | None = None
    semantic_score: float | None = None
    carried_by: str | None = None
    exemplar_id: str | None = None
    exemplar_score: float | None = None

    @property
    def other_weight(self) -> float:
        """The weight of the shared terms not listed in ``terms`` (beyond
        the first :data:`matcher.explain.MAX_TERMS`, function words, kanji
        features not listed): ``terms``' weights + ``other_weight`` = the
        TF-IDF cosine (``comparable_score``)."""
        return max(0.0, self.comparable_score - math.fsum(t.weight for t in self.terms))

    @property
    def comparable_score(self) -> float:
        """The score that is comparable across proposals: the TF-IDF cosine
        (``lexical_score`` in semantic mode, where ``score`` is a fused
        z-score; ``score`` in lexical mode). Its range is the index's
        ``comparable_scale``."""
        return self.lexical_score if self.lexical_score is not None else self.score

    def to_dict(self, *, digits: int = 4) -> dict[str, Any]:
        """The JSON of one match: its listed terms and ``other_weight``, the
        semantic keys only when they are set."""
        data: dict[str, Any] = {
            "program_id": self.program_id,
            "program_name": self.program_name,
            "department": self.department,
            "score": round(self.score, digits),
            "terms": [
                {"term": term, "weight": round(weight, digits), "field": field, "kind": kind}
                for term, weight, field, kind, _ in self.terms
            ],
            "other_weight": round(self.other_weight, digits),
        }
        if self.lexical_score is not None:
            data["lexical_score"] = round(self.lexical_score, digits)
        if self.semantic_score is not None:
            data["semantic_score"] = round(self.semantic_score, digits)
        if self.carried_by is not None:
            data["carried_by"] = self.carried_by
        if self.exemplar_id is not None:
            data["exemplar"] = {"proposal_id": self.exemplar_id, "score": round(self.exemplar_score or 0.0, digits)}
        return data


@dataclass(frozen=True)
class DepartmentScore:
    """A department (担当課) ranked by the score of its best program.

    The score is on the scale of the matches' ``score``: the TF-IDF cosine in
    lexical mode; in semantic mode the fused score, a sum of z-scores over the
    programs, so 0 is the proposal's average program and a department below
    it gets a negative score. Compare departments of one proposal, not across
    proposals.
    """

    department: str
    score: float
    # "program": ranked through its best program; "duties": by its 所掌事務
    # (matcher.duties, when a department directory is given), whichever gave
    # the larger share of the merged score.
    source: str = "program"


@dataclass(frozen=True)
class MatchResult:
    """The ranking for one proposal.

    ``no_match`` is true when no program is a credible partner (or the
    proposal could not be read: then ``error`` says why). ``best_lexical``,
    ``best_semantic`` and ``best_exemplar`` are what the index's no_match
    rule read (``is_no_match(best_lexical, best_semantic, best_exemplar)``):
    the best TF-IDF cosine, the best e5 cosine and the nearest accepted
    proposal's e5 cosine over all programs; None when that score does not
    exist (lexical mode, no exemplar, a proposal that could not be read).
    They are not part of :meth:`to_dict`.
    """

    proposal_id: str
    no_match: bool
    matches: list[ProgramMatch] = field(default_factory=list)
    departments: list[DepartmentScore] = field(default_factory=list)
    error: str | None = None
    best_lexical: float | None = None
    best_semantic: float | None = None
    best_exemplar: float | None = None
    # matcher.confidence.assess: "high" / "medium" / "low" (low exactly when
    # no_match), and whether the first two programs are a toss-up between
    # departments. None / False until assessed.
    confidence: str | None = None
    ambiguous: bool = False

    def to_dict(self, *, digits: int = 4) -> dict[str, Any]:
        """The JSON shape of ``kyodo match`` (written out by hand: asdict's
        deep copies cost more than the matching itself at 10,000 proposals)."""
        data: dict[str, Any] = {
            "proposal_id": self.proposal_id,
            "no_match": self.no_match,
            "confidence": self.confidence,
            "ambiguous": self.ambiguous,
            "matches": [m.to_dict(digits=digits) for m in self.matches],
            "departments": [
                {"department": d.department, "score": round(d.score, digits), "source": d.source}
                for d in self.departments
            ],
        }
        if self.error is not None:
            data["error"] = self.error
        return data
