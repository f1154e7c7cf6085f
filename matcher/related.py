"""Related proposals: the engine of program matching, turned on the proposals
themselves (proposal ↔ proposal), and the rule for a likely duplicate.

Each proposal is a document of a :class:`ProposalSpace`: its TF-IDF row built
exactly as the program index builds one (:class:`matcher.index.ProgramIndex`'s
tokenizer, stop words, single-kanji features, sublinear TF and smooth IDF,
here over the proposals), and in semantic mode its e5 vector, embedded as a
``query:`` as in the rematch (so the embedder's cache serves it: no extra
embedding). Two proposals score as the engine fuses a proposal with a program
(:mod:`matcher.fusion`): each cosine becomes a z-score over the proposal's
other proposals, the two are weighted 1 : 1.5 (TF-IDF : e5), and, because
likeness between proposals must be symmetric, the pair's score is the mean of
its two directions. The z-score per proposal stops a "hub" (a proposal a
little like every other) being everyone's nearest (docs/quality.md).

:mod:`matcher.themes` clusters over the same pair scores.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import scipy.sparse as sp

from matcher import weighting as wt
from matcher.counting import KANJI_PREFIX, Counted
from matcher.duplicates import DUPLICATE_SCORE
from matcher.explain import MAX_TERMS
from matcher.fusion import (
    DEFAULT_LEXICAL_WEIGHT,
    DEFAULT_SEMANTIC_WEIGHT,
    EXEMPLAR_REFERENCE_MEAN,
    EXEMPLAR_REFERENCE_STD,
)
from matcher.index import ProgramIndex
from matcher.text import ProposalText, proposal_error, proposal_text, reject_string
from matcher.tokenize import WrittenForms

if TYPE_CHECKING:
    from matcher.embedder import Embedder

DEFAULT_RELATED_K = 5
# The TF-IDF cosine of two dev proposals: mean and standard deviation over
# every pair (benchmarks/tune_themes.py prints them); the e5 one is the
# exemplars' reference (matcher.fusion). Each proposal's own mean and spread
# are mixed with PRIOR_PAIRS pseudo-pairs of these, so that a file of three
# proposals still has a spread to divide by.
LEXICAL_REFERENCE = (0.0447, 0.0363)
SEMANTIC_REFERENCE = (EXEMPLAR_REFERENCE_MEAN, EXEMPLAR_REFERENCE_STD)
PRIOR_PAIRS = 10
# Pairs kept per proposal: beyond this many other proposals only each one's
# MAX_NEIGHBOURS best pairs (both directions) are stored, a pair missing from
# both lists counting as 0, a proposal's average likeness. Below it every pair
# is kept and the themes are exact average linkage.
MAX_NEIGHBOURS = 30
# A pair this alike in TF-IDF (the likely-duplicate rule's cosine) is a near
# copy: it is scored, but left out of its rows' mean and spread.
NEAR_COPY = DUPLICATE_SCORE
# Rows of pair scores computed at once: bounds memory to BLOCK × n floats.
BLOCK = 512
# The TF-IDF columns multiplied as a dense array (the most frequent ones), at
# most DENSE_VALUES floats in all (64 MB: about 800 columns at 10,000 proposals).
DENSE_COLUMNS = 1024
DENSE_VALUES = 8_000_000
# Blocks scored at once, whatever the caller's threads: each holds a few
# BLOCK × n arrays (about 120 MB at 10,000 proposals), so a many-core machine
# must not run one per core.
MAX_BLOCK_THREADS = 4

_T = TypeVar("_T")


@dataclass(frozen=True)
class Related:
    """Another proposal like this one.

    ``score`` ranks them: the pair's fused likeness in standard deviations
    above each proposal's average likeness to the others (symmetric: the
    same seen from either side). ``lexical`` is the TF-IDF cosine (0–1,
    comparable across pairs), ``semantic`` the e5 cosine (None in lexical
    mode), ``terms`` the words they share, heaviest first, as this
    proposal wrote them (no single-kanji feature, no function word).
    """

    proposal_id: str
    score: float
    lexical: float
    semantic: float | None = None
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProposalSpace:
    """The proposals of a batch as the engine represents them.

    ``ids`` are every proposal given, in order; ``rows`` the positions (in
    ``ids``) of those that can be read (:func:`matcher.text.proposal_error`),
    one row each of ``lexical`` (L2-normalized TF-IDF, CSR), ``forms`` and
    ``vectors`` (e5, None in lexical mode).
    """

    ids: tuple[str, ...]
    rows: np.ndarray
    lexical: sp.csr_matrix
    feature_names: np.ndarray
    forms: tuple[WrittenForms | None, ...]
    vectors: np.ndarray | None
    mode: str

    @property
    def n(self) -> int:
        """Readable proposals."""
        return len(self.rows)


@dataclass(frozen=True)
class PairGraph:
    """Scored pairs of a space (positions ``a < b`` among its rows), each once."""

    n: int
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    lexical: np.ndarray
    semantic: np.ndarray | None


def build_space(
    proposals: Sequence[ProposalText],
    *,
    mode: str,
    embedder: Embedder | None,
    n_jobs: int = 1,
    counted: Counted | None = None,
) -> ProposalSpace:
    """The :class:`ProposalSpace` of ``proposals``.

    ``mode`` is ``"lexical"`` or ``"semantic"`` (then ``embedder`` is
    required); ``n_jobs`` processes tokenize; ``counted``: the term counts
    and written forms of ``proposals`` if the caller already has them (from
    the same :class:`~matcher.counting.TermCounter` settings), so that they
    are not tokenized twice.

    Raises ValueError for an unknown mode, a semantic mode without an
    embedder, or ids that repeat.
    """
    reject_string(proposals)
    proposals = list(proposals)
    if mode not in ("lexical", "semantic") or (mode == "semantic" and embedder is None):
        raise ValueError(f"mode must be 'lexical' or 'semantic' with an embedder, not {mode!r}")
    ids = tuple(p.id for p in proposals)
    repeated = [i for i, count in Counter(ids).items() if count > 1]
    if repeated:
        raise ValueError(f"proposal ids must be unique: {repeated[0]!r} repeats")
    rows = np.asarray([i for i, p in enumerate(proposals) if proposal_error(p) is None], dtype=np.int64)
    engine = ProgramIndex(n_jobs=n_jobs)
    counts, forms = counted if counted is not None else engine._counter().proposal_counts_with_forms(proposals)
    readable = [counts[i] or {} for i in rows.tolist()]
    matrix, names = _tfidf(readable, engine)
    vectors = None
    if mode == "semantic" and embedder is not None:
        texts = [proposal_text(proposals[i]) for i in rows.tolist()]
        vectors = embedder.embed(texts, role="query")
    kept_forms = tuple(forms[i] for i in rows.tolist())
    return ProposalSpace(ids, rows, matrix, names, kept_forms, vectors, mode)


def _tfidf(counts: list[dict[str, float]], engine: ProgramIndex) -> tuple[sp.csr_matrix, np.ndarray]:
    """The L2-normalized TF-IDF rows of the proposals, as the program index
    weighs a document (its sublinear TF, smooth IDF and kanji scale), the
    IDF counted over the proposals."""
    vocabulary = wt.sorted_vocabulary(counts)
    if not counts:  # nothing readable: no rows to normalize
        return sp.csr_matrix((0, len(vocabulary))), np.asarray([], dtype=object)
    tf = wt.tf_rows(counts, vocabulary, sublinear=engine.sublinear_tf)
    idf = wt.idf(wt.document_frequency(tf), float(max(len(counts), 1)), smooth=True)
    if engine.kanji_weight > 0:
        wt.scale_features(idf, vocabulary, KANJI_PREFIX, engine.kanji_weight)
    names = np.asarray(list(vocabulary), dtype=object)
    return wt.l2_normalize(tf.multiply(idf)).tocsr(), names


# -- pair scores ---------------------------------------------------------------


@dataclass(frozen=True)
class _Stats:
    """Each row's mean and spread of one cosine over its other rows."""

    mean: np.ndarray
    std: np.ndarray


def _weights(space: ProposalSpace) -> tuple[float, float]:
    """TF-IDF and e5 weights, summing to 1 (so both modes score in z units)."""
    if space.vectors is None:
        return 1.0, 0.0
    total = DEFAULT_LEXICAL_WEIGHT + DEFAULT_SEMANTIC_WEIGHT
    return DEFAULT_LEXICAL_WEIGHT / total, DEFAULT_SEMANTIC_WEIGHT / total


def _row_stats(block: np.ndarray, start: int, reference: tuple[float, float], copies: np.ndarray) -> _Stats:
    """Mean and standard deviation of each row of ``block`` (rows ``start…``
    of the full matrix) without its diagonal and its near copies (``copies``:
    a boolean block, the diagonal false), with the reference pseudo-pairs.
    A proposal sent twice would otherwise widen the spread of its row so much
    that its real partners fall below the themes' bar."""
    rows = np.arange(block.shape[0])
    kept = np.where(copies, 0.0, block)
    diagonal = kept[rows, start + rows]
    total = kept.sum(axis=1) - diagonal
    squares = np.einsum("ij,ij->i", kept, kept) - diagonal**2
    mu, sd = reference
    count = block.shape[1] - 1 - copies.sum(axis=1) + PRIOR_PAIRS
    mean = (total + PRIOR_PAIRS * mu) / count
    variance = (squares + PRIOR_PAIRS * (sd * sd + mu * mu)) / count - mean**2
    return _Stats(mean, np.sqrt(np.maximum(variance, 1e-12)))


def _directed(raw: np.ndarray, stats: _Stats, rows: np.ndarray) -> np.ndarray:
    """z-scores of ``raw`` (aligned with ``rows``) by the stats of ``rows``."""
    if raw.ndim == 2:
        return (raw - stats.mean[rows, None]) / stats.std[rows, None]
    return (raw - stats.mean[rows]) / stats.std[rows]


@dataclass(frozen=True)
class _Split:
    """The TF-IDF rows in two parts whose products add up to the cosines:
    the columns most proposals hold as a dense array (their products by BLAS)
    and the rest as CSR with its transpose. The frequent terms (and kanji
    features) make most of a sparse product's work, and its output is
    nearly dense anyway; the rare ones stay sparse."""

    dense: np.ndarray
    sparse: sp.csr_matrix
    sparse_t: sp.csr_matrix

    @classmethod
    def of(cls, rows: sp.csr_matrix, width: int | None = None) -> _Split:
        """``width`` dense columns (default: DENSE_COLUMNS within DENSE_VALUES)."""
        frequency = np.bincount(rows.indices, minlength=rows.shape[1])
        if width is None:
            width = DENSE_COLUMNS if rows.shape[0] * DENSE_COLUMNS <= DENSE_VALUES else DENSE_VALUES // rows.shape[0]
        width = min(rows.shape[1], width)
        frequent = np.zeros(rows.shape[1], dtype=bool)
        frequent[np.argsort(-frequency, kind="stable")[:width]] = True
        columns = rows.tocsc()
        sparse = columns[:, np.flatnonzero(~frequent)].tocsr()
        return cls(columns[:, np.flatnonzero(frequent)].toarray(), sparse, sparse.T.tocsr())

    def cosines(self, start: int, end: int) -> np.ndarray:
        """The TF-IDF cosines of rows ``start:end`` with every row."""
        out = self.dense[start:end] @ self.dense.T
        out += (self.sparse[start:end] @ self.sparse_t).toarray()
        return out


def _block(
    space: ProposalSpace, split: _Split, start: int, keep: int
) -> tuple[tuple[np.ndarray, ...], _Stats, _Stats | None]:
    """Rows ``start…start + BLOCK`` of the pair scores: each row's ``keep``
    best pairs and its TF-IDF (and e5) stats. Numpy and scipy's sparse
    product release the GIL, so blocks can run in threads."""
    w_lex, w_sem = _weights(space)
    end = min(start + BLOCK, space.n)
    lexical = split.cosines(start, end)
    rows = np.arange(start, end)
    copies = lexical >= NEAR_COPY
    copies[np.arange(len(rows)), rows] = False
    lex_stats = _row_stats(lexical, start, LEXICAL_REFERENCE, copies)
    fused = w_lex * _directed(lexical, lex_stats, rows - start)
    sem_stats = semantic = None
    if space.vectors is not None:
        # float32 products (the vectors' own precision), z-scored in float64.
        semantic = (space.vectors[start:end] @ space.vectors.T).astype(np.float64)
        sem_stats = _row_stats(semantic, start, SEMANTIC_REFERENCE, copies)
        fused += w_sem * _directed(semantic, sem_stats, rows - start)
    return _best_of_block(rows, fused, lexical, semantic, keep), lex_stats, sem_stats


def pair_graph(space: ProposalSpace, *, max_neighbours: int = MAX_NEIGHBOURS, threads: int = 1) -> PairGraph:
    """The fused score of every pair of the space's rows (of each row's
    ``max_neighbours`` best, beyond that many rows); ``threads`` blocks of
    rows at a time, at most MAX_BLOCK_THREADS (each holds BLOCK × n floats)."""
    weights = _weights(space)
    keep = min(max_neighbours, space.n - 1)
    if keep < 1:  # fewer than two readable proposals: no pair
        empty = np.zeros(0, dtype=np.int64)
        return PairGraph(space.n, empty, empty, np.zeros(0), np.zeros(0), None if weights[1] == 0 else np.zeros(0))
    split = _Split.of(space.lexical)
    starts = list(range(0, space.n, BLOCK))
    parts = list(bounded_map(lambda start: _block(space, split, start, keep), starts, min(threads, MAX_BLOCK_THREADS)))
    found = [p[0] for p in parts]
    lex = _joined([p[1] for p in parts])
    sem = _joined([p[2] for p in parts if p[2] is not None]) if space.vectors is not None else None
    return _symmetric(space.n, found, lex, sem, weights)


def bounded_map(function: Callable[[int], _T], items: Sequence[int], threads: int) -> Iterator[_T]:
    """``function`` over ``items`` in order, at most ``threads`` running or
    finished and not yet taken at once (memory stays ``threads`` results)."""
    if threads <= 1 or len(items) < 2:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque[Future[_T]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _joined(parts: list[_Stats]) -> _Stats:
    return _Stats(np.concatenate([p.mean for p in parts]), np.concatenate([p.std for p in parts]))


def _best_of_block(
    rows: np.ndarray, fused: np.ndarray, lexical: np.ndarray, semantic: np.ndarray | None, keep: int
) -> tuple[np.ndarray, ...]:
    """(row, column, TF-IDF, e5) of each row's ``keep`` best columns, itself excluded."""
    local = np.arange(len(rows))
    fused[local, rows] = -np.inf
    if keep < fused.shape[1] - 1:
        columns = np.argpartition(-fused, keep - 1, axis=1)[:, :keep]
    else:
        columns = np.tile(np.arange(fused.shape[1]), (len(rows), 1))
        columns = columns[columns != rows[:, None]].reshape(len(rows), -1)
    picked_rows = np.repeat(local, columns.shape[1])
    flat = columns.ravel()
    sem = semantic[picked_rows, flat] if semantic is not None else np.zeros(0)
    return rows[picked_rows], flat, lexical[picked_rows, flat], sem


def _symmetric(
    n: int, found: list[tuple[np.ndarray, ...]], lex: _Stats, sem: _Stats | None, weights: tuple[float, float]
) -> PairGraph:
    """Each pair once (``a < b``), scored by the mean of its two directions."""
    i, j, lexical, semantic = (np.concatenate([f[k] for f in found]) for k in range(4))
    a, b = np.minimum(i, j), np.maximum(i, j)
    _, first = np.unique(a * n + b, return_index=True)
    a, b, lexical = a[first], b[first], lexical[first]
    score = weights[0] * (_directed(lexical, lex, a) + _directed(lexical, lex, b)) / 2
    kept_semantic = None
    if sem is not None:
        kept_semantic = semantic[first]
        score += weights[1] * (_directed(kept_semantic, sem, a) + _directed(kept_semantic, sem, b)) / 2
    return PairGraph(n, a, b, score, lexical, kept_semantic)


# -- related proposals -----------------------------------------------------------


def related_lists(
    space: ProposalSpace, *, k: int = DEFAULT_RELATED_K, graph: PairGraph | None = None, with_terms: bool = True,
    threads: int = 1,
) -> list[list[Related]]:
    """The ``k`` most related other proposals of each proposal of the space,
    best first (ties: the earlier proposal), one list per proposal given
    (empty for one that cannot be read); ``with_terms=False`` leaves the
    shared terms out (what ``kyodo match`` prints); ``threads``: see
    :func:`pair_graph`, when ``graph`` is not given."""
    graph = graph if graph is not None else pair_graph(space, threads=threads)
    out: list[list[Related]] = [[] for _ in space.ids]
    if k < 1 or not len(graph.a):
        return out
    source = np.concatenate([graph.a, graph.b])
    target = np.concatenate([graph.b, graph.a])
    edge = np.concatenate([np.arange(len(graph.a))] * 2)
    order = np.lexsort((target, -graph.score[edge], source))
    source, target, edge = source[order], target[order], edge[order]
    starts = np.searchsorted(source, np.arange(space.n))
    rank = np.arange(len(source)) - starts[source]
    semantic = graph.semantic.tolist() if graph.semantic is not None else None
    for i, j, e in zip(*(x[rank < k].tolist() for x in (source, target, edge)), strict=True):
        out[int(space.rows[i])].append(Related(
            space.ids[int(space.rows[j])], float(graph.score[e]), float(graph.lexical[e]),
            semantic[e] if semantic is not None else None, shared_words(space, i, j) if with_terms else (),
        ))
    return out


def related(
    proposals: Sequence[ProposalText],
    *,
    mode: str,
    embedder: Embedder | None,
    k: int = DEFAULT_RELATED_K,
    n_jobs: int = 1,
) -> dict[str, list[Related]]:
    """The ``k`` most related other proposals of each proposal, by id (an
    empty list for a proposal that cannot be read); never a proposal itself.

    >>> found = related([ProposalText("a", "防災講座", "地域で防災講座を開きたい"),
    ...                  ProposalText("b", "防災の講座", "防災講座を地域で開く"),
    ...                  ProposalText("c", "広報", "市の広報紙を読みやすくする")], mode="lexical", embedder=None, k=1)
    >>> [r.proposal_id for r in found["a"]], "防災" in found["a"][0].terms
    (['b'], True)
    """
    space = build_space(proposals, mode=mode, embedder=embedder, n_jobs=n_jobs)
    return dict(zip(space.ids, related_lists(space, k=k), strict=True))


def shared_words(space: ProposalSpace, i: int, j: int, *, limit: int = MAX_TERMS) -> tuple[str, ...]:
    """The words rows ``i`` and ``j`` share, heaviest (product of their
    TF-IDF weights) first, as row ``i`` wrote them: no single-kanji feature,
    no function word."""
    matrix = space.lexical
    ci, vi = (x[matrix.indptr[i] : matrix.indptr[i + 1]] for x in (matrix.indices, matrix.data))
    cj, vj = (x[matrix.indptr[j] : matrix.indptr[j + 1]] for x in (matrix.indices, matrix.data))
    common, pi, pj = np.intersect1d(ci, cj, assume_unique=True, return_indices=True)
    order = np.lexsort((common, -(vi[pi] * vj[pj])))
    return tuple(written_words(space, i, (space.feature_names[c] for c in common[order].tolist()), limit))


def written_words(space: ProposalSpace, i: int, lemmas: Iterable[str], limit: int) -> list[str]:
    """Up to ``limit`` of ``lemmas`` that a person is shown, as row ``i``
    wrote them."""
    forms = space.forms[i]
    words: list[str] = []
    for lemma in lemmas:
        if lemma.startswith(KANJI_PREFIX) or (forms is not None and lemma in forms.hidden):
            continue
        word = forms.display(lemma) if forms is not None else lemma
        if word not in words:
            words.append(word)
        if len(words) >= limit:
            break
    return words
