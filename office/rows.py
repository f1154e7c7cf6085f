"""The decision-aware row policy: matcher rankings → suggestion and outcome
rows. Pure functions, no database: the rematch and online matching both use
them, and tests/test_rows.py checks them on plain values.

The rules (docs/rematch.md): a rejected pair is never written; the top-k is
filled from the next ranks instead; an accepted pair is always written, at
its place in the full ranking, even outside the top-k (``kept_by_decision``);
``is_new`` marks a pair absent from the previously published suggestions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from matcher import MatchResult, ProgramMatch, ProposalText
from matcher.semantic import Exemplar

STORED_TERMS = 10  # explanation terms kept per suggestion
DEFAULT_CHUNK_SIZE = 1000  # proposals ranked and written together: what bounds a run's memory
Row = dict[str, Any]
_EMPTY: frozenset[int] = frozenset()


def group(pairs: Iterable[tuple[int, int]]) -> dict[int, set[int]]:
    """(proposal, program) pairs as proposal → programs."""
    out: dict[int, set[int]] = {}
    for proposal_id, program_id in pairs:
        out.setdefault(proposal_id, set()).add(program_id)
    return out


@dataclass
class DecisionContext:
    """Current decisions and previously published pairs, per proposal."""

    rejected: dict[int, set[int]] = field(default_factory=dict)
    accepted: dict[int, set[int]] = field(default_factory=dict)
    previous: dict[int, set[int]] = field(default_factory=dict)

    def rejected_of(self, proposal_id: int) -> set[int] | frozenset[int]:
        return self.rejected.get(proposal_id, _EMPTY)

    def depth(self, proposal_id: int, top_k: int, n_programs: int) -> int:
        """How deep to rank a proposal so that its top-k survives its rejected pairs."""
        return min(top_k + len(self.rejected_of(proposal_id)), n_programs)

    def needs_deeper(self, result: MatchResult, top_k: int) -> bool:
        """Whether a top-k ranking lost rows to rejected pairs (and more programs may follow)."""
        rejected = self.rejected_of(int(result.proposal_id))
        return len(result.matches) >= top_k and any(int(m.program_id) in rejected for m in result.matches)

    def exemplars(self, proposals: Iterable[ProposalText]) -> list[Exemplar]:
        """The accepted pairings as exemplars of the semantic layer: each
        accepted proposal's text stands for its program."""
        return _pairings(self.accepted, proposals)

    def rejections(self, proposals: Iterable[ProposalText]) -> list[Exemplar]:
        """The rejected pairings, as negative exemplars of the semantic layer:
        a new proposal like a rejected one is pushed away from its program."""
        return _pairings(self.rejected, proposals)


def _pairings(pairs: dict[int, set[int]], proposals: Iterable[ProposalText]) -> list[Exemplar]:
    by_id = {p.id: p for p in proposals}
    return [
        Exemplar(str(program_id), by_id[str(proposal_id)])
        for proposal_id, program_ids in sorted(pairs.items())
        if str(proposal_id) in by_id
        for program_id in sorted(program_ids)
    ]


def terms(match: ProgramMatch) -> list[list[Any]]:
    """The stored form of a match's explanation: ``[[term, weight, field], ...]``
    with, when they are not the defaults, the kind (``"word"``) and the
    matcher's lemma (the term itself): ``[term, weight, field, kind, lemma]``.
    Rows stored before kinds existed are the three-item form, read alike
    (web.highlight.stored_terms)."""
    out = []
    for t in match.terms[:STORED_TERMS]:
        row: list[Any] = [t.term, round(t.weight, 5), t.field]
        lemma = t.lemma or t.term
        if t.kind != "word" or lemma != t.term:
            row.append(t.kind)
            if lemma != t.term:
                row.append(lemma)
        out.append(row)
    return out


def scores(match: ProgramMatch | None) -> Row:
    """The semantic layer's columns of a row (all None in lexical mode)."""
    if match is None:
        return {"lexical_score": None, "semantic_score": None, "carried_by": None,
                "exemplar_proposal_id": None, "exemplar_score": None}
    return {
        "lexical_score": match.lexical_score,
        "semantic_score": match.semantic_score,
        "carried_by": match.carried_by,
        "exemplar_proposal_id": int(match.exemplar_id) if match.exemplar_id is not None else None,
        "exemplar_score": match.exemplar_score,
    }


def _row(proposal_id: int, program_id: int, match: ProgramMatch | None, rank: int, *,
         previous: set[int] | frozenset[int], kept: bool) -> Row:
    return {
        "proposal_id": proposal_id,
        "program_id": program_id,
        "score": float(match.score) if match else 0.0,
        "rank": rank,
        "terms": terms(match) if match else [],
        "is_new": program_id not in previous,
        "kept_by_decision": kept,
        **scores(match),
    }


def rows_for_result(
    result: MatchResult, *, top_k: int, context: DecisionContext,
    full_ranking: Callable[[], list[ProgramMatch]],
) -> list[Row]:
    """Top-k rows without rejected pairs, plus accepted pairs outside the top-k.

    ``full_ranking`` is called only when an accepted pair is missing.
    """
    proposal_id = int(result.proposal_id)
    rejected = context.rejected_of(proposal_id)
    previous = context.previous.get(proposal_id, _EMPTY)
    rows: list[Row] = []
    for match in result.matches:
        if int(match.program_id) in rejected:
            continue
        if len(rows) >= top_k:
            break
        rows.append(_row(proposal_id, int(match.program_id), match, len(rows) + 1, previous=previous, kept=False))
    missing = context.accepted.get(proposal_id, _EMPTY) - {r["program_id"] for r in rows}
    if missing and result.error is None:
        rows.extend(kept_rows(proposal_id, missing, rejected, previous, full_ranking()))
    return rows


def kept_rows(
    proposal_id: int, missing: Iterable[int], rejected: set[int] | frozenset[int],
    previous: set[int] | frozenset[int], ranking: list[ProgramMatch],
) -> list[Row]:
    """Rows of accepted pairs outside the top-k.

    Rank = place in the full ranking without rejected pairs; a program no
    longer in the index (an earlier fiscal year) keeps score 0 at the end.
    """
    place = {int(m.program_id): m for m in ranking}
    order = [int(m.program_id) for m in ranking if int(m.program_id) not in rejected]
    position = {program_id: i + 1 for i, program_id in enumerate(order)}
    rows = []
    for program_id in sorted(missing, key=lambda p: position.get(p, len(order) + 1)):
        rank = position.get(program_id, len(order) + 1)
        rows.append(_row(proposal_id, program_id, place.get(program_id), rank, previous=previous, kept=True))
    return rows


def outcome_row(result: MatchResult) -> Row:
    """The stored outcome of one proposal: the best scores the matcher's
    no_match rule read, and its verdict."""
    return {
        "proposal_id": int(result.proposal_id),
        "best_lexical": result.best_lexical,
        "best_semantic": result.best_semantic,
        "best_exemplar": result.best_exemplar,
        "no_match": bool(result.no_match),
        "confidence": result.confidence,
        "ambiguous": bool(result.ambiguous),
    }
