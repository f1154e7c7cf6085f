"""Fusing TF-IDF with e5: the defaults chosen on the dev split, the
accepted pairings (:class:`Exemplar`), and the pure functions on score
matrices that :class:`matcher.fused.FusedIndex` composes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher.text import ProposalText

# Chosen on the dev split by benchmarks/tune_semantic.py (docs/quality.md).
# Objective: mean MRR of the ordinary and the paraphrase kinds, then mean
# hit@1. All four fields with e5 at 1.5 × TF-IDF was the only setting that
# raised both kinds (ordinary MRR 0.970 → 0.979, paraphrase 0.482 → 0.570 with
# the current stop words).
DEFAULT_LEXICAL_WEIGHT = 1.0
DEFAULT_SEMANTIC_WEIGHT = 1.5
# The coordinator's keywords (ProgramRecord.keywords) are embedded with the
# rest (benchmarks/tune_keywords.py); an empty field adds nothing to the text,
# so a program without keywords embeds as before.
DEFAULT_EMBED_FIELDS: tuple[str, ...] = ("name", "purpose", "activities", "policy", "keywords")
# 低 / no_match when best TF-IDF cosine + 2 × best e5 cosine < 1.7838: the
# highest threshold that puts at most 15 % of the in-scope dev proposals in 低
# (benchmarks/tune_confidence.py). The sum separated in-scope from
# out-of-scope better (AUC 0.877) than either score alone (0.857, 0.872) or
# anything read off the fused z-scores; factors 1–8 were within 0.01 AUC.
DEFAULT_NO_MATCH_SEMANTIC_FACTOR = 2.0
DEFAULT_NO_MATCH_THRESHOLD = 1.7838
# Weight of the third term: the e5 cosine of a proposal with the nearest
# proposal the coordinator accepted for each program (its exemplars), as
# :func:`exemplar_lift`. Chosen on the dev split with every other dev
# proposal as an exemplar, leave one out (benchmarks/tune_semantic.py,
# docs/quality.md): the best paraphrase MRR among weights that keep ordinary
# hit@1 at least that of TF-IDF alone.
DEFAULT_EXEMPLAR_WEIGHT = 2.0
# The e5 cosine of two unrelated proposals: mean and standard deviation over
# every pair of dev proposals (benchmarks/tune_semantic.py prints them). A
# nearest exemplar counts by how far it stands above this.
EXEMPLAR_REFERENCE_MEAN = 0.871
EXEMPLAR_REFERENCE_STD = 0.0163
# With exemplars, a proposal the rule above flags is cleared when it is close
# to an accepted proposal: flagged only if also TF-IDF + 2 × e5 + 4 × nearest
# exemplar cosine < 5.39 (bests over all programs). Exemplars can only clear
# a flag, never add one, so a young deployment with few accepted proposals
# flags as without them. Chosen on dev, leave one out: the factor with the
# fewest in-scope proposals flagged while ≥ 85 % of out-of-scope ones are.
# Weight of the rejected pairings' term (subtracted, matcher.fusion.rejection_push):
# a proposal closer to one the coordinator REJECTED for a program than to any
# accepted for it is pushed away from that program. Chosen on the dev split
# with decisions simulated from gold, leave one out
# (benchmarks/tune_rejections.py, docs/quality.md): no weight raised dev MRR
# (0.908 at 0 and 0.5, 0.902 at 1, 0.884 at 4); 0.5 is the largest that cost
# nothing there, so a rejection counts without hurting.
DEFAULT_REJECTION_WEIGHT = 0.5
DEFAULT_NO_MATCH_EXEMPLAR_FACTOR = 4.0
DEFAULT_NO_MATCH_EXEMPLAR_THRESHOLD = 5.39


@dataclass(frozen=True)
class Exemplar:
    """A proposal the coordinator accepted for a program.

    NPOs describe a program's work in their own words; the proposals already
    accepted for it are the best record of those words. A new proposal close
    to one of them (e5 cosine, proposal to proposal) is pulled towards the
    same program, and the page can say which accepted proposal it resembles.
    """

    program_id: str
    proposal: ProposalText


def zscore(scores: np.ndarray) -> np.ndarray:
    """Row-wise z-scores (a constant row gives zeros).

    >>> zscore(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])).round(3).tolist()
    [[-1.225, 0.0, 1.225], [0.0, 0.0, 0.0]]
    """
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return np.divide(scores - mean, std, out=np.zeros_like(scores, dtype=np.float64), where=std > 0)


def exemplar_lift(
    nearest: np.ndarray,
    mean: float = EXEMPLAR_REFERENCE_MEAN,
    std: float = EXEMPLAR_REFERENCE_STD,
) -> np.ndarray:
    """How far each nearest-exemplar cosine stands above that of two unrelated
    proposals, in standard deviations, floored at 0; NaN (no exemplar) is 0.

    An accepted proposal like the new one pulls its program up; an unlike one
    (or none) says nothing. A fixed reference, not a z-score per proposal: the
    first accepted proposal of a young deployment must already count, and a
    row with one exemplar has no spread of its own.

    >>> exemplar_lift(np.array([[0.90, np.nan, 0.80]]), mean=0.87, std=0.02).round(3).tolist()
    [[1.5, 0.0, 0.0]]
    """
    lift = (np.nan_to_num(nearest, nan=mean) - mean) / std
    return np.clip(lift, 0.0, None)


def fuse(
    lexical: np.ndarray, semantic: np.ndarray, *, lexical_weight: float, semantic_weight: float
) -> np.ndarray:
    """Fused scores: ``lexical_weight × z(lexical) + semantic_weight × z(semantic)``,
    z-scores taken per proposal (row) over the programs.

    Each method's raw scores live on their own scale (TF-IDF cosines of
    0–0.5, e5 cosines of 0.75–0.9); z-scores per proposal put them on one.

    >>> fuse(np.array([[0.0, 0.3]]), np.array([[0.9, 0.8]]), lexical_weight=1, semantic_weight=2).round(6).tolist()
    [[1.0, -1.0]]
    """
    return lexical_weight * zscore(lexical) + semantic_weight * zscore(semantic)


def lexical_rank(row: np.ndarray, j: int) -> int:
    """0-based position of program ``j`` in TF-IDF's own ranking of ``row``
    (ties broken by catalogue order, as :class:`ProgramIndex` does).

    A fused match placed higher than this was carried by the embedding: the
    shared terms alone would have put another program there.

    >>> lexical_rank(np.array([0.1, 0.3, 0.1]), 2)
    2
    """
    return int(np.count_nonzero(row > row[j]) + np.count_nonzero(row[:j] == row[j]))



def carried_by(position: int, lexical: np.ndarray, base: np.ndarray, j: int) -> str:
    """What placed program ``j`` at ``position`` of a fused ranking: ``"lexical"``
    unless TF-IDF alone (``lexical``, one proposal's cosines) would have put it
    lower; then ``"exemplar"`` if TF-IDF and e5 without the exemplar term
    (``base``) would also have, else ``"semantic"``.

    >>> carried_by(0, np.array([0.1, 0.3]), np.array([0.5, -0.5]), 0)
    'semantic'
    """
    if position < lexical_rank(lexical, j):
        return "exemplar" if position < lexical_rank(base, j) else "semantic"
    return "lexical"


def nearest_exemplars(
    sims: np.ndarray, rows: np.ndarray, exemplar_programs: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per proposal and program, the cosine of the nearest exemplar (NaN where
    none) and its column in ``sims`` (-1 where none).

    ``sims``: the cosines of the proposals at ``rows`` (of a matrix of
    ``shape``) with every exemplar, -inf where an exemplar must not count
    (the proposal itself); ``exemplar_programs``: each exemplar's program.
    """
    nearest_score = np.full(shape, np.nan)
    nearest = np.full(shape, -1, dtype=np.int64)
    for j in np.unique(exemplar_programs).tolist():
        columns = np.flatnonzero(exemplar_programs == j)
        best = sims[:, columns].argmax(axis=1)
        score = sims[np.arange(len(rows)), columns[best]]
        found = np.isfinite(score)
        nearest_score[rows[found], j] = score[found]
        nearest[rows[found], j] = columns[best][found]
    return nearest_score, nearest


def bank_matrix(
    vectors: np.ndarray,
    rows: Sequence[int],
    own_ids: Sequence[str],
    bank: tuple[np.ndarray, np.ndarray, Sequence[str]],
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_exemplars` for one bank of proposals tied to programs
    (accepted or rejected pairings): ``bank`` is (their e5 vectors, their
    programs' columns, their proposal ids); ``vectors`` the e5 vectors of the
    proposals at ``rows``, whose ids are ``own_ids`` (a proposal never counts
    as its own exemplar)."""
    bank_vectors, bank_programs, bank_ids = bank
    if not len(bank_ids) or not len(rows):
        return np.full(shape, np.nan), np.full(shape, -1, dtype=np.int64)
    sims = vectors.astype(np.float64) @ bank_vectors.astype(np.float64).T
    own: dict[str, list[int]] = {}
    for column, proposal_id in enumerate(bank_ids):
        own.setdefault(proposal_id, []).append(column)
    for r, proposal_id in enumerate(own_ids):
        sims[r, own.get(proposal_id, [])] = -np.inf
    return nearest_exemplars(sims, np.asarray(rows, dtype=np.int64), bank_programs, shape)


def rejection_push(exemplar: np.ndarray, rejection: np.ndarray) -> np.ndarray:
    """How far a proposal is pushed away from each program by the nearest
    proposal the coordinator rejected for it: its :func:`exemplar_lift`
    beyond that of the nearest accepted one, floored at 0. A proposal that
    is as close to an accepted proposal of the program as to a rejected one
    is not pushed: only the rejected side's extra likeness counts.

    >>> rejection_push(np.array([[0.90, np.nan]]), np.array([[0.92, 0.91]])).round(3).tolist()
    [[1.227, 2.393]]
    """
    return np.clip(exemplar_lift(rejection) - exemplar_lift(exemplar), 0.0, None)
