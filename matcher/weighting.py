"""Counting, weighting and normalising, apart (as scikit-learn's
CountVectorizer / TfidfTransformer, or bm25s's scorers).

Small pure functions that :class:`matcher.index.ProgramIndex` composes:

* counting: :func:`count_terms`, :func:`sorted_vocabulary`, :func:`gather` (every term of many rows at once), :func:`rows_to_csr`;
* term frequency: :func:`tf_array`, :func:`tf_rows` (raw or sublinear);
* field weighting: :func:`weighted_fields`, :func:`dominant_field`;
* document frequency and IDF: :func:`document_frequency`,
  :func:`add_document_frequency`, :func:`idf`, :func:`unseen_idf`,
  :func:`scale_features`;
* normalising: :func:`l2_normalize`, :func:`query_matrix`;
* BM25 on the program side: :func:`document_length`, :func:`bm25_tf`,
  :func:`mean_row_norm`.

BM25 is one more term-frequency function and a parameter choosing it
(``ProgramIndex(weighting="bm25")``); nothing else changes. Each function computes exactly
what the index computed before it was split out, operation for operation,
so scores are equal to the last bit.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize as _sk_normalize

# -- counting ------------------------------------------------------------------


def count_terms(tokens: Iterable[str], stop: frozenset[str]) -> dict[str, int]:
    """Occurrences of each token not in ``stop``, in first-seen order.

    >>> count_terms(["防災", "講座", "防災", "支援"], frozenset({"支援"}))
    {'防災': 2, '講座': 1}
    """
    # Counted in C (Counter keeps first-seen order), then interned once per
    # term: the counts of 10,000s of proposals share one string per term
    # instead of holding a copy per proposal.
    return {sys.intern(t): c for t, c in Counter(tokens).items() if t not in stop}


def sorted_vocabulary(rows: Iterable[Mapping[str, object]]) -> dict[str, int]:
    """Column of each term of ``rows``, in sorted term order: feature order
    must not depend on dict history, so two fits on the same corpus give
    identical arrays (and feature index order is term order).

    >>> sorted_vocabulary([{"b": 1, "a": 2}, {"c": 1, "a": 1}])
    {'a': 0, 'b': 1, 'c': 2}
    """
    terms: set[str] = set()
    for row in rows:
        terms.update(row)
    return {t: i for i, t in enumerate(sorted(terms))}


class Gathered(NamedTuple):
    """Every term of some rows at once: its text, value, row and column (-1
    outside the vocabulary)."""

    terms: list[str]
    values: np.ndarray
    row_of: np.ndarray
    columns: np.ndarray


def gather(rows: Sequence[Mapping[str, float] | None], vocabulary: Mapping[str, int]) -> Gathered:
    """The terms of ``rows`` (None: an empty row) in row order, gathered by
    list.extend and mapped to columns by np.fromiter: no Python-level
    statement per term (the batch's hot path)."""
    terms: list[str] = []
    values: list[float] = []
    lengths = np.zeros(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        if row:
            terms += row.keys()
            values += row.values()
            lengths[i] = len(row)
    get = vocabulary.get
    columns = np.fromiter(map(get, terms, repeat(-1, len(terms))), dtype=np.int64, count=len(terms))
    return Gathered(terms, np.asarray(values, dtype=np.float64), np.repeat(np.arange(len(rows)), lengths), columns)


def rows_to_csr(rows: Sequence[Mapping[str, float]], vocabulary: Mapping[str, int]) -> sp.csr_matrix:
    """A CSR matrix (one row per mapping, float64, sorted indices); terms
    outside ``vocabulary`` are left out.

    >>> rows_to_csr([{"b": 2.0, "z": 1.0}, {}, {"a": 1.0}], {"a": 0, "b": 1}).toarray().tolist()
    [[0.0, 2.0], [0.0, 0.0], [1.0, 0.0]]
    """
    found = gather(rows, vocabulary)
    seen = found.columns >= 0
    matrix = sp.csr_matrix(
        (found.values[seen], (found.row_of[seen], found.columns[seen])), shape=(len(rows), len(vocabulary)),
    )
    matrix.sort_indices()
    return matrix


# -- term frequency --------------------------------------------------------------


def tf_array(counts: np.ndarray, *, sublinear: bool) -> np.ndarray:
    """The term frequency of each count (float64, a new array): ``1 + ln(count)``
    when sublinear (for counts of at least 1; a smaller weighted count, e.g. a
    title term at weight 0.5, stays as it is), else the count.

    >>> tf_array(np.array([1.0, 0.5, np.e]), sublinear=True).round(6).tolist()
    [1.0, 0.5, 2.0]
    """
    out = np.array(counts, dtype=np.float64)
    if sublinear:
        big = out >= 1
        out[big] = 1.0 + np.log(out[big])
    return out


def tf_rows(rows: Sequence[Mapping[str, float]], vocabulary: Mapping[str, int], *, sublinear: bool) -> sp.csr_matrix:
    """``rows_to_csr`` of the rows' counts, as their :func:`tf_array` (taken
    over the matrix's values at once: the batch's hot path)."""
    matrix = rows_to_csr(rows, vocabulary)
    matrix.data = tf_array(matrix.data, sublinear=sublinear)
    return matrix


# -- field weighting -------------------------------------------------------------


def weighted_fields(
    field_tf: Mapping[str, sp.csr_matrix], weights: Mapping[str, float], shape: tuple[int, int]
) -> sp.csr_matrix:
    """The weighted sum of per-field term-frequency matrices, fields in the
    order of ``weights`` (a field of weight 0 adds nothing)."""
    total = sp.csr_matrix(shape, dtype=np.float64)
    for field, weight in weights.items():
        if weight:
            total = total + weight * field_tf[field]
    return total


def dominant_field(
    matrix: sp.csr_matrix, field_tf: Mapping[str, sp.csr_matrix], weights: Mapping[str, float]
) -> np.ndarray:
    """For each stored value of ``matrix`` (CSR, sorted indices), the position
    in ``weights`` of the field that gives that term most of its weight in
    that row (int8)."""
    coo = matrix.tocoo()
    rows, cols = coo.row, coo.col
    per_field = np.vstack(
        [weight * np.asarray(field_tf[field][rows, cols]).ravel() for field, weight in weights.items()]
    )
    # tocoo() of a CSR matrix with sorted indices keeps the CSR data order.
    return np.argmax(per_field, axis=0).astype(np.int8)


# -- document frequency and IDF -------------------------------------------------


def document_frequency(tf: sp.spmatrix) -> np.ndarray:
    """Rows in which each column is positive (float64)."""
    return np.asarray((tf > 0).sum(axis=0)).ravel().astype(np.float64)


def add_document_frequency(
    df: np.ndarray, documents: Iterable[Mapping[str, object] | None], vocabulary: Mapping[str, int]
) -> int:
    """Count ``documents`` (term mappings; None is skipped) into ``df`` in
    place, for the terms of ``vocabulary``; returns how many were counted."""
    n = 0
    for terms in documents:
        if terms is not None:
            for term in terms:
                j = vocabulary.get(term)
                if j is not None:
                    df[j] += 1
            n += 1
    return n


def idf(df: np.ndarray, n_docs: float, *, smooth: bool = True) -> np.ndarray:
    """Inverse document frequency as TfidfTransformer: smooth
    ``ln((1 + n) / (1 + df)) + 1`` (as if one more document held every term),
    or ``ln(n / df) + 1``.

    >>> idf(np.array([1.0, 3.0]), 3.0).round(4).tolist()
    [1.6931, 1.0]
    """
    if smooth:
        return np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    return np.log(n_docs / df) + 1.0


def unseen_idf(n_docs: float) -> float:
    """The smooth IDF of a term no document holds (df = 0): what a proposal's
    words outside the vocabulary weigh in its norm."""
    return float(math.log(1.0 + n_docs) + 1.0)


def scale_features(
    weights: np.ndarray, vocabulary: Mapping[str, int], prefix: str, factor: float
) -> np.ndarray:
    """``weights`` with the columns of the terms starting with ``prefix``
    multiplied by ``factor`` (in place; also returned)."""
    columns = [j for term, j in vocabulary.items() if term.startswith(prefix)]
    if columns:
        weights[np.asarray(columns, dtype=np.int64)] *= factor
    return weights


# -- normalising ----------------------------------------------------------------


def l2_normalize(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (an all-zero row stays zero), sorted indices."""
    out = _sk_normalize(sp.csr_matrix(matrix), norm="l2")
    out.sort_indices()
    return out


# -- BM25 (program side) --------------------------------------------------------


def document_length(tf: sp.csr_matrix, vocabulary: Mapping[str, int], skip_prefix: str) -> np.ndarray:
    """Each row's sum of (weighted) counts over the terms not starting with
    ``skip_prefix`` (float64): BM25's document length. The single-kanji
    features restate the kanji of the words; counting them would make a
    program longer for the kanji its words happen to hold."""
    keep = np.ones(tf.shape[1], dtype=np.float64)
    skipped = [j for term, j in vocabulary.items() if term.startswith(skip_prefix)]
    if skipped:
        keep[np.asarray(skipped, dtype=np.int64)] = 0.0
    return np.asarray(tf @ keep, dtype=np.float64).ravel()


def bm25_tf(tf: sp.csr_matrix, length: np.ndarray, *, k1: float, b: float) -> sp.csr_matrix:
    """BM25's saturated term frequency of each stored value of ``tf`` (CSR,
    row ``i`` of length ``length[i]``): ``(k1 + 1) tf / (tf + k1 (1 - b + b
    length / mean length))``; ``b = 0`` leaves length out. Same sparsity and
    order as ``tf``.

    >>> m = sp.csr_matrix(np.array([[2.0, 0.0], [2.0, 6.0]]))
    >>> bm25_tf(m, np.array([2.0, 8.0]), k1=1.2, b=0.75).toarray().round(4).tolist()
    [[1.6541, 0.0], [1.1765, 1.7054]]
    """
    tf = sp.csr_matrix(tf, dtype=np.float64, copy=True)
    mean = float(length.mean()) if len(length) else 0.0
    relative = length / mean if mean > 0 else np.ones_like(length)
    norm = k1 * (1.0 - b + b * relative)
    per_value = np.repeat(norm, np.diff(tf.indptr))
    tf.data = (k1 + 1.0) * tf.data / (tf.data + per_value)
    return tf


def bm25_rows(
    tf: sp.csr_matrix, idf: np.ndarray, length: np.ndarray, *, k1: float, b: float
) -> sp.csr_matrix:
    """BM25 program rows: :func:`bm25_tf` times ``idf`` (the index's smooth
    IDF, so proposals keep their TF-IDF rows), divided by
    :func:`mean_row_norm`: one constant for the corpus keeps BM25's ranking
    and its length normalisation, and puts a typical program's dot product
    with an L2-normalized proposal near the cosine's scale (it can pass 1).
    CSR, sorted indices."""
    rows = sp.csr_matrix(bm25_tf(tf, length, k1=k1, b=b).multiply(idf))
    rows = sp.csr_matrix(rows / mean_row_norm(rows))
    rows.sort_indices()
    return rows


def mean_row_norm(matrix: sp.csr_matrix) -> float:
    """The mean L2 norm of the non-empty rows (1.0 when all are empty): one
    constant for a whole corpus, so dividing by it changes no ranking."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms = norms[norms > 0]
    return float(norms.mean()) if len(norms) else 1.0


def check_weighting(weighting: str, k1: float, b: float) -> bool:
    """Whether the program rows are BM25 (else TF-IDF); ValueError for
    anything but ``"tfidf"`` or ``"bm25"`` with ``k1 > 0`` and ``0 <= b <= 1``."""
    bm25 = weighting == "bm25"
    if weighting != "tfidf" and not (bm25 and k1 > 0 and 0 <= b <= 1):
        raise ValueError(f"weighting {weighting!r}, k1 {k1}, b {b}: 'tfidf', or 'bm25' with k1 > 0 and 0 <= b <= 1")
    return bm25


def program_rows(
    tf: sp.csr_matrix, idf: np.ndarray, vocabulary: Mapping[str, int], *, bm25: bool, k1: float, b: float,
    skip_prefix: str,
) -> sp.csr_matrix:
    """The programs' rows: L2-normalized TF-IDF, or :func:`bm25_rows` with the
    length of :func:`document_length` (terms starting ``skip_prefix`` left out)."""
    if bm25:
        return bm25_rows(tf, idf, document_length(tf, vocabulary, skip_prefix), k1=k1, b=b)
    return l2_normalize(tf.multiply(idf))


def query_matrix(
    counts_list: Sequence[Mapping[str, float] | None], vocabulary: Mapping[str, int], idf: np.ndarray, *,
    sublinear: bool, unseen: float, kanji_prefix: str, kanji_weight: float,
) -> sp.csr_matrix:
    """The L2-normalized TF-IDF row of each of ``counts_list`` (weighted
    counts; an empty row for None), as one CSR matrix (sorted indices),
    computed over all the terms at once.

    A term outside ``vocabulary`` still counts in the norm, at ``unseen``
    (times ``kanji_weight`` for a single-kanji feature): a text about
    something else should score low, not be judged on the few words it
    happens to share.
    """
    terms, values, row_of, columns = gather(counts_list, vocabulary)
    weight = tf_array(values, sublinear=sublinear)
    seen = columns >= 0
    weight[seen] *= idf[columns[seen]]
    unseen_at = np.flatnonzero(~seen)
    scale = np.fromiter((kanji_weight if terms[i].startswith(kanji_prefix) else 1.0 for i in unseen_at.tolist()),
                        dtype=np.float64, count=len(unseen_at))
    weight[unseen_at] *= unseen * scale
    norm = np.sqrt(np.bincount(row_of, weights=weight * weight, minlength=len(counts_list)))
    norm[norm == 0] = 1.0
    matrix = sp.csr_matrix(
        (weight[seen] / norm[row_of[seen]], (row_of[seen], columns[seen])), shape=(len(counts_list), len(vocabulary)),
    )
    matrix.sort_indices()
    return matrix
