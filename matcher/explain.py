"""Scoring rows into rankings, and the explanations of a ranking: the shared
terms of a pair and the departments ranked by their best program.

Pure functions on arrays, used by both indexes (:mod:`matcher.index`,
:mod:`matcher.fused`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from matcher.results import DepartmentScore, Term


def shared_terms(
    programs: sp.csr_matrix,
    term_field: np.ndarray,
    feature_names: np.ndarray,
    fields: Sequence[str],
    q_terms: np.ndarray,
    q_weights: np.ndarray,
    j: int,
) -> list[Term]:
    """The terms a proposal row shares with program ``j``, weight descending
    then term; their weights add up to the pair's cosine.

    ``programs`` is the L2-normalized program matrix (sorted indices),
    ``term_field`` the field index (in ``fields``) of each of its stored
    values, ``q_terms`` / ``q_weights`` the sorted columns and values of one
    L2-normalized proposal row.
    """
    start, end = programs.indptr[j], programs.indptr[j + 1]
    # Both index arrays are sorted and unique: intersect them in C rather
    # than walking every term of the program in Python.
    shared, in_query, in_program = np.intersect1d(
        q_terms, programs.indices[start:end], assume_unique=True, return_indices=True
    )
    weights = q_weights[in_query] * programs.data[start:end][in_program]
    field_of = term_field[start:end][in_program]
    # Weight descending, then term: the vocabulary is sorted, so feature
    # index order is term order.
    order = np.lexsort((shared, -weights))
    return [
        Term(term=t, weight=w, field=fields[f])
        for t, w, f in zip(
            feature_names[shared[order]].tolist(),
            weights[order].tolist(),
            field_of[order].tolist(),
            strict=True,
        )
    ]


def top_programs(row: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best columns of ``row``, score descending, ties broken by
    catalogue order (column), so results are deterministic."""
    n_programs = len(row)
    if k < n_programs:
        candidates = np.argpartition(-row, k - 1)[:k]
        # Include every program tied with the k-th score, so the tie-break
        # below is by catalogue order, not by partition luck.
        kth = row[candidates].min()
        candidates = np.flatnonzero(row >= kth)
    else:
        candidates = np.arange(n_programs)
    # lexsort: last key is primary. Score descending, then catalogue order.
    return candidates[np.lexsort((candidates, -row[candidates]))][:k]


def rank_departments(
    row: np.ndarray, department_lists: Sequence[Sequence[str]], k: int
) -> list[DepartmentScore]:
    """Departments ranked by their best program's (positive) score.

    Walking the programs from the best score down, a department's first
    appearance is its best score, so only the top of the ranking is read
    (not every program of every proposal).
    """
    positive = int(np.count_nonzero(row > 0))
    ranked: dict[str, float] = {}
    window = min(positive, max(4 * k, 32))
    while True:
        ranked = _departments_in_window(row, department_lists, window)
        if len(ranked) >= k or window >= positive:
            break
        window = min(positive, window * 4)
    return [DepartmentScore(department=d, score=v) for d, v in list(ranked.items())[:k]]


def _departments_in_window(
    row: np.ndarray, department_lists: Sequence[Sequence[str]], window: int
) -> dict[str, float]:
    if window < len(row):
        top = np.argpartition(-row, window - 1)[:window] if window else np.array([], int)
    else:
        top = np.arange(len(row))
    order = top[np.lexsort((top, -row[top]))]
    ranked: dict[str, float] = {}
    for j in order.tolist():
        score = float(row[j])
        if score <= 0:
            break
        for department in department_lists[j]:
            ranked.setdefault(department, score)
    return ranked


def rank_departments_in_order(
    row: np.ndarray, ranking: np.ndarray, department_lists: Sequence[Sequence[str]], k: int
) -> list[DepartmentScore]:
    """Departments ranked by their best program's score along a full
    ``ranking`` of the programs (scores of any sign, e.g. fused z-scores)."""
    ranked: dict[str, float] = {}
    for j in ranking.tolist():
        for department in department_lists[j]:
            ranked.setdefault(department, float(row[j]))
        if len(ranked) >= k:
            break
    return [DepartmentScore(department=d, score=v) for d, v in list(ranked.items())[:k]]
