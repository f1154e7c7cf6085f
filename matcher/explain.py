"""Scoring rows into rankings, and the explanations of a ranking: the shared
terms of a pair and the departments ranked by their best program.

Pure functions on arrays, used by both indexes (:mod:`matcher.index`,
:mod:`matcher.fused`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from matcher.counting import KANJI_PREFIX
from matcher.results import DepartmentScore, Term
from matcher.tokenize import WrittenForms

# Terms an explanation lists per pair; the rest add up to ``other_weight``.
MAX_TERMS = 8
# What a person is shown of a pair's terms (kanji features and function words never).
SHOWN_KINDS = frozenset({"word", "keyword", "compound"})


class QueryRows(sp.csr_matrix):
    """Proposal rows (CSR, as :meth:`ProgramIndex.transform` returns) that also
    carry how each proposal wrote its terms (``forms``, one per row, None
    where unknown), so that explaining a row can show the proposal's words.
    A slice of rows keeps its rows' forms."""

    forms: Sequence[WrittenForms | None] = ()

    @classmethod
    def of(cls, matrix: sp.csr_matrix, forms: Sequence[WrittenForms | None]) -> QueryRows:
        rows = cls(matrix)
        rows.forms = forms
        return rows

    def __getitem__(self, key: Any) -> Any:
        out = super().__getitem__(key)
        if isinstance(key, slice) and isinstance(out, QueryRows):
            out.forms = self.forms[key]
        return out


def _query(queries: sp.csr_matrix, i: int) -> tuple[np.ndarray, np.ndarray, WrittenForms | None]:
    """Row ``i``'s sorted columns and values, and how its proposal wrote its
    terms if ``queries`` knows (a :class:`QueryRows`)."""
    start, end = queries.indptr[i], queries.indptr[i + 1]
    forms = getattr(queries, "forms", ())
    return queries.indices[start:end], queries.data[start:end], forms[i] if i < len(forms) else None


def term_kind(term: str, field: str, forms: WrittenForms | None) -> str:
    """``kanji`` (a single-kanji feature), ``function`` (a function word of the
    proposal), ``keyword`` (found in the program's キーワード), ``compound``
    (a joined noun bigram) or ``word``."""
    if term.startswith(KANJI_PREFIX):
        return "kanji"
    if forms is not None and term in forms.hidden:
        return "function"
    if field == "keywords":
        return "keyword"
    if forms is not None and term in forms.compounds:
        return "compound"
    return "word"


def shared_terms(
    programs: sp.csr_matrix,
    term_field: np.ndarray,
    feature_names: np.ndarray,
    fields: Sequence[str],
    queries: sp.csr_matrix,
    i: int,
    js: Sequence[int],
    limit: int | None = MAX_TERMS,
) -> list[list[Term]]:
    """The terms proposal row ``i`` of ``queries`` shares with each program
    of ``js``, weight descending then term, each as the proposal wrote it.

    With ``limit``, at most that many: the heaviest of the kinds a person is
    shown (:data:`SHOWN_KINDS`), never a function word; kanji features only
    when the pair shares no such word (a pair that shares only 災 of 減災 /
    防災 still says why it scored). With None, all of them, of every kind:
    their weights add up to the pair's cosine.

    ``programs`` is the L2-normalized program matrix (sorted indices),
    ``term_field`` the field index (in ``fields``) of each of its stored
    values, ``queries`` L2-normalized proposal rows (sorted indices). The
    pairs of ``js`` are found together by one pass of array operations, and
    only the terms listed become Python objects.
    """
    q_terms, q_weights, forms = _query(queries, i)
    n = len(js)
    if not len(q_terms) or not n:
        return [[] for _ in range(n)]
    pairs = _Pairs.of(programs, (q_terms, q_weights), np.asarray(js, dtype=np.int64))
    # Kanji features are one block of the sorted vocabulary (字:一 … 字:龠).
    block = np.searchsorted(feature_names, [KANJI_PREFIX, _KANJI_END])
    kanji = (pairs.columns >= block[0]) & (pairs.columns < block[1])
    # Per program, words before kanji features (unless all are wanted), each
    # by weight descending, then term: the vocabulary is sorted, so feature
    # index order is term order.
    group = pairs.pair * 2 + (kanji if limit is not None else 0)
    order = np.lexsort((pairs.columns, -pairs.weights, group))
    bounds = np.searchsorted(group[order], np.arange(2 * n + 1)).tolist()
    rows = _Rows(
        feature_names[pairs.columns[order]].tolist(),
        pairs.weights[order].tolist(),
        [fields[f] for f in term_field[pairs.positions[order]].tolist()],
        forms,
    )
    if limit is None:
        return [rows.every(bounds[2 * p], bounds[2 * p + 1]) for p in range(n)]
    return [rows.listed(bounds[2 * p : 2 * p + 3], limit) for p in range(n)]


_KANJI_END = KANJI_PREFIX[:-1] + chr(ord(KANJI_PREFIX[-1]) + 1)


class _Pairs(NamedTuple):
    """The stored values a proposal row shares with some programs: their
    positions in the program matrix, columns, weight products and pair."""

    positions: np.ndarray
    columns: np.ndarray
    weights: np.ndarray
    pair: np.ndarray

    @classmethod
    def of(cls, programs: sp.csr_matrix, query: tuple[np.ndarray, np.ndarray], js: np.ndarray) -> _Pairs:
        q_terms, q_weights = query
        starts = programs.indptr[js]
        lengths = programs.indptr[js + 1] - starts
        # The positions of the programs' stored values, one run per program.
        positions = np.arange(lengths.sum()) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        columns = programs.indices[positions]
        # Where each column sits in the sorted query row, and whether it is there.
        found = np.minimum(np.searchsorted(q_terms, columns), len(q_terms) - 1)
        hit = q_terms[found] == columns
        positions, columns, found = positions[hit], columns[hit], found[hit]
        pair = np.repeat(np.arange(len(js)), lengths)[hit]
        return cls(positions, columns, q_weights[found] * programs.data[positions], pair)


class _Rows:
    """The shared terms of a proposal's pairs, in the order of their groups."""

    __slots__ = ("fields", "forms", "names", "weights")

    def __init__(self, names: list[str], weights: list[float], fields: list[str], forms: WrittenForms | None):
        self.names, self.weights, self.fields, self.forms = names, weights, fields, forms

    def every(self, start: int, end: int) -> list[Term]:
        """All terms of rows ``start:end``, of every kind."""
        return [self._term(q, term_kind(self.names[q], self.fields[q], self.forms)) for q in range(start, end)]

    def listed(self, bounds: list[int], limit: int) -> list[Term]:
        """The terms an explanation lists, ``bounds`` = start of the pair's
        words, of its kanji features, end: up to ``limit`` words that are not
        function words, by weight; kanji features only for a pair that
        shares no such word."""
        words_start, kanji_start, end = bounds
        names, weights, fields, forms = self.names, self.weights, self.fields, self.forms
        chosen: list[Term] = []
        # term_kind and the Term constructor inlined: this loop runs for
        # every listed term of a batch (tuple.__new__ skips the Python-level
        # __new__ of a named tuple).
        hidden = forms.hidden if forms is not None else frozenset()
        compounds = forms.compounds if forms is not None else frozenset()
        written = forms.written if forms is not None else {}
        for q in range(words_start, kanji_start):
            name = names[q]
            if name in hidden:
                continue
            field = fields[q]
            kind = "keyword" if field == "keywords" else "compound" if name in compounds else "word"
            chosen.append(_new_term(Term, (written.get(name, name), weights[q], field, kind, name)))
            if len(chosen) == limit:
                break
        if chosen:
            return chosen
        return [self._term(q, "kanji") for q in range(kanji_start, min(end, kanji_start + limit))]

    def _term(self, q: int, kind: str) -> Term:
        name = self.names[q]
        if kind == "kanji":
            shown = name[len(KANJI_PREFIX) :]
        else:
            shown = self.forms.written.get(name, name) if self.forms is not None else name
        return Term(shown, self.weights[q], self.fields[q], kind, name)


_new_term = tuple.__new__


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
        ranked = _departments_in_window(row, department_lists, window, k)
        if len(ranked) >= k or window >= positive:
            break
        window = min(positive, window * 4)
    return [DepartmentScore(department=d, score=v) for d, v in list(ranked.items())[:k]]


def _departments_in_window(
    row: np.ndarray, department_lists: Sequence[Sequence[str]], window: int, k: int
) -> dict[str, float]:
    """The first ``k`` departments along the ``window`` best programs."""
    if window < len(row):
        top = np.argpartition(-row, window - 1)[:window] if window else np.array([], int)
    else:
        top = np.arange(len(row))
    order = top[np.lexsort((top, -row[top]))]
    ranked: dict[str, float] = {}
    for j, score in zip(order.tolist(), row[order].tolist(), strict=True):
        if score <= 0:
            break
        for department in department_lists[j]:
            ranked.setdefault(department, score)
        if len(ranked) >= k:
            break
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
