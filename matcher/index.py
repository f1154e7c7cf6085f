"""TF-IDF index of the city's programs, with explained rankings.

The index follows the scikit-learn estimator contract: hyperparameters are
keyword-only ``__init__`` arguments stored as given, validation happens in
``fit``, fitted state ends in ``_``, and ``match`` / ``transform`` raise
``NotFittedError`` before ``fit``.

It composes three separate steps: counting (:mod:`matcher.counting`), weighting
and normalising (:mod:`matcher.weighting`), scoring and explaining
(:mod:`matcher.explain`). Saving and loading: :mod:`matcher.store`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from matcher import weighting as wt
from matcher.confidence import assess
from matcher.counting import COUNT_SLICE, KANJI_PREFIX, Counted, ProposalCounts, TermCounter
from matcher.defaults import (
    DEFAULT_FIELD_WEIGHTS,
    DEFAULT_KANJI_WEIGHT,
    DEFAULT_NO_MATCH_THRESHOLD,
    DEFAULT_STOP_WORDS,
)
from matcher.explain import MAX_TERMS, QueryRows, rank_departments, shared_terms, top_programs
from matcher.results import MatchResult, ProgramMatch, Term
from matcher.store import FORMAT_VERSION, corpus_fingerprint, load_program_index, save_program_index
from matcher.text import (
    FIELDS,
    MAX_PROPOSAL_CHARS,
    ProgramLike,
    ProposalText,
    checked_programs,
    proposal_chunks,
    proposal_error,
    reject_string,
)

if TYPE_CHECKING:
    from matcher.embedder import Embedder
    from matcher.semantic import Exemplar

DEFAULT_CHUNK_SIZE = 1000

__all__ = [
    "COUNT_SLICE", "DEFAULT_FIELD_WEIGHTS", "DEFAULT_KANJI_WEIGHT", "DEFAULT_NO_MATCH_THRESHOLD",
    "DEFAULT_STOP_WORDS", "FIELDS", "FORMAT_VERSION", "KANJI_PREFIX", "MAX_PROPOSAL_CHARS",
    "ProgramIndex", "ProgramLike", "ProposalText", "proposal_chunks", "proposal_error",
]


class ProgramIndex(BaseEstimator):
    """Rank a city's programs for proposals by TF-IDF cosine similarity.

    Parameters
    ----------
    field_weights : dict or None
        Weight of each program field (``name`` 事業名, ``purpose`` 目的,
        ``activities`` 取り組み内容, ``policy`` 施策名, ``keywords`` キーワード)
        in the program vector: the program's term frequency is the weighted
        sum of the per-field (sublinear) frequencies. None means
        :data:`DEFAULT_FIELD_WEIGHTS`.
    top_k : int
        Programs returned per proposal.
    sublinear_tf : bool
        Use ``1 + log(count)`` as term frequency.
    stop_words : sequence of str or None
        Lemmas ignored on both sides. None means :data:`DEFAULT_STOP_WORDS`.
    compounds : bool
        Emit joined noun bigrams (see :func:`matcher.tokenize.tokenize`).
    title_weight : float
        Weight of the proposal title's terms relative to its body.
    no_match_threshold : float
        A proposal whose best score is below this is flagged ``no_match``.
    idf_from_proposals : bool
        Let the IDF also count documents among the proposal texts given to
        ``fit``.
    kanji_weight : float
        Also index each kanji of the content words as a feature
        (``字:災``), scaled by this weight (0 disables). NPOs name a
        program's topic in other words that often share a kanji with it
        (減災 / 防災, 育児 / 子育て); the scale keeps whole words dominant.
    n_jobs : int
        Processes used to tokenize large batches (see
        :func:`matcher.tokenize.tokenize_many`).
    weighting, k1, b : str, float, float
        Program rows: ``"tfidf"`` (L2-normalized), or ``"bm25"`` of the raw
        weighted field counts (saturation ``k1`` > 0, length normalisation
        ``0 ≤ b ≤ 1``, :func:`matcher.weighting.bm25_rows`). Proposal rows
        stay TF-IDF either way; a score is their dot product, which the
        shared terms add up to.

    Examples
    --------
    >>> from corpus import ProgramRecord
    >>> programs = [
    ...     ProgramRecord(id="a", name="防災講座", purpose="市民の防災意識を高める"),
    ...     ProgramRecord(id="b", name="広報紙の発行", purpose="市政情報を分かりやすく伝える"),
    ... ]
    >>> index = ProgramIndex(top_k=1).fit(programs)
    >>> [m.program_id for m in index.match([ProposalText("p", body="地域の防災講座を開きたい")])[0].matches]
    ['a']
    """

    #: The index interface shared with :class:`matcher.fused.FusedIndex`.
    mode = "lexical"
    #: Range of the score that is comparable across proposals
    #: (:attr:`ProgramMatch.comparable_score`): the TF-IDF cosine.
    comparable_scale: tuple[float, float] = (0.0, 1.0)

    def __init__(
        self,
        *,
        field_weights: dict[str, float] | None = None,
        top_k: int = 5,
        sublinear_tf: bool = True,
        stop_words: Sequence[str] | None = None,
        compounds: bool = False,
        title_weight: float = 1.0,
        no_match_threshold: float = DEFAULT_NO_MATCH_THRESHOLD,
        idf_from_proposals: bool = True,
        kanji_weight: float = DEFAULT_KANJI_WEIGHT,
        n_jobs: int = 1,
        weighting: str = "tfidf",
        k1: float = 1.2,
        b: float = 0.75,
    ):
        self.field_weights = field_weights
        self.top_k = top_k
        self.sublinear_tf = sublinear_tf
        self.stop_words = stop_words
        self.compounds = compounds
        self.title_weight = title_weight
        self.no_match_threshold = no_match_threshold
        self.idf_from_proposals = idf_from_proposals
        self.kanji_weight = kanji_weight
        self.n_jobs = n_jobs
        self.weighting = weighting
        self.k1 = k1
        self.b = b

    # -- fitting -------------------------------------------------------------

    def _weights(self) -> dict[str, float]:
        weights = dict(DEFAULT_FIELD_WEIGHTS if self.field_weights is None else self.field_weights)
        unknown = set(weights) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown fields in field_weights: {sorted(unknown)}")
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError("field_weights must be non-negative with at least one positive")
        return {f: float(weights.get(f, 0.0)) for f in FIELDS}

    def count_proposals(self, proposals: Sequence[ProposalText], *, n_jobs: int | None = None) -> Counted:
        """The term counts and written forms of ``proposals`` as this index
        counts them, in ``n_jobs`` processes (default: the index's)."""
        counter = self._counter() if n_jobs is None else replace(self._counter(), n_jobs=n_jobs)
        return counter.proposal_counts_with_forms(list(proposals))

    def _stop(self) -> frozenset[str]:
        return frozenset(DEFAULT_STOP_WORDS if self.stop_words is None else self.stop_words)

    def _counter(self) -> TermCounter:
        return TermCounter(
            stop=self._stop(),
            compounds=self.compounds,
            kanji=self.kanji_weight > 0,
            title_weight=self.title_weight,
            n_jobs=self.n_jobs,
        )

    def fit(
        self, programs: Sequence[ProgramLike], proposals: Sequence[ProposalText] = ()
    ) -> ProgramIndex:
        """Fit the vocabulary, IDF and program vectors.

        Parameters
        ----------
        programs : sequence of program records
            Each has ``id``, ``name``, ``department``, ``departments`` and
            ``text_fields()``.
        proposals : sequence of ProposalText
            Only read when ``idf_from_proposals`` is true.

        Returns
        -------
        self
        """
        reject_string(proposals)
        counts = self._counter().proposal_counts(list(proposals)) if self.idf_from_proposals else []
        return self._fit(programs, counts)

    def fit_transform(
        self, programs: Sequence[ProgramLike], proposals: Sequence[ProposalText], *, counted: Counted | None = None
    ) -> sp.csr_matrix:
        """:meth:`fit` on ``programs`` (and ``proposals`` for the IDF), then
        :meth:`transform` of ``proposals``, tokenizing each proposal once
        (none if ``counted``, from :meth:`count_proposals`, is given)."""
        reject_string(proposals)
        proposals = list(proposals)
        counts, forms = counted if counted is not None else self.count_proposals(proposals)
        self._fit(programs, counts if self.idf_from_proposals else [])
        return self._transform(counts, forms)

    def fit_match(
        self,
        programs: Sequence[ProgramLike],
        proposals: Sequence[ProposalText],
        *,
        top_k: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        exemplars: Sequence[Exemplar] = (),
        rejections: Sequence[Exemplar] = (),
        counted: Counted | None = None,
    ) -> Iterator[MatchResult]:
        """Fit on ``programs`` (and ``proposals`` for the IDF), then match
        ``proposals``, tokenizing each proposal once (``counted``: see :meth:`fit_transform`).

        The nightly rematch and ``kyodo match`` use this; it yields as
        :meth:`iter_match` does. ``exemplars`` and ``rejections`` (accepted
        and rejected pairings) need the semantic layer (:class:`matcher.fused.FusedIndex`): TF-IDF ignores
        them; the parameter is here so that both indexes are called alike.
        """
        proposals = list(proposals)
        queries = self.fit_transform(programs, proposals, counted=counted)
        k = self.top_k if top_k is None else top_k
        for start in range(0, len(proposals), chunk_size):
            end = start + chunk_size
            yield from self._match_chunk(proposals[start:end], queries[start:end], k)

    def _fit(
        self, programs: Sequence[ProgramLike], proposal_counts: Sequence[ProposalCounts]
    ) -> ProgramIndex:
        programs = checked_programs(programs)
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        weights, bm25 = self._weights(), wt.check_weighting(self.weighting, self.k1, self.b)
        field_counts = self._counter().program_field_counts(programs)
        vocabulary = wt.sorted_vocabulary(c for f in FIELDS for c in field_counts[f])
        sublinear = self.sublinear_tf and not bm25  # BM25 saturates raw counts itself
        field_tf = {
            f: wt.tf_rows(rows, vocabulary, sublinear=sublinear)
            for f, rows in field_counts.items()
        }
        tf = wt.weighted_fields(field_tf, weights, (len(programs), len(vocabulary)))
        self._fit_idf(tf, proposal_counts, vocabulary)
        self.vocabulary_ = vocabulary
        self.feature_names_ = np.asarray(list(vocabulary), dtype=object)
        self.program_matrix_ = wt.program_rows(tf, self.idf_, vocabulary, bm25=bm25, k1=self.k1, b=self.b,
                                               skip_prefix=KANJI_PREFIX)
        self.term_field_ = wt.dominant_field(self.program_matrix_, field_tf, weights)
        self._set_programs(programs)
        self.fingerprint_ = self._corpus_fingerprint(programs)
        return self

    def _fit_idf(
        self, tf: sp.csr_matrix, proposal_counts: Sequence[ProposalCounts], vocabulary: dict[str, int]
    ) -> None:
        """``idf_`` and ``unseen_idf_``: the smooth IDF over the programs (and
        the readable proposals), as TfidfVectorizer(smooth_idf=True); an unseen
        term gets the same formula with df = 0 (a proposal's unknown words).
        ``idf_`` is the IDF times the feature group's weight (``kanji_weight``
        for single-kanji features), so both sides of the cosine are scaled alike."""
        df = wt.document_frequency(tf)
        n_docs = float(tf.shape[0])
        n_docs += wt.add_document_frequency(df, proposal_counts, vocabulary)
        self.idf_ = wt.idf(df, n_docs, smooth=True)
        if self.kanji_weight > 0:
            wt.scale_features(self.idf_, vocabulary, KANJI_PREFIX, self.kanji_weight)
        self.unseen_idf_ = wt.unseen_idf(n_docs)

    def _set_programs(self, programs: Sequence[ProgramLike]) -> None:
        self.program_ids_ = [p.id for p in programs]
        self.program_names_ = [p.name for p in programs]
        self.program_departments_ = [p.department for p in programs]
        self.program_department_lists_ = [list(p.departments) for p in programs]

    def _corpus_fingerprint(self, programs: Sequence[ProgramLike]) -> str:
        return corpus_fingerprint(self._public_params(), programs)

    def _public_params(self) -> dict[str, Any]:
        params = self.get_params()
        params["stop_words"] = list(params["stop_words"]) if params["stop_words"] is not None else None
        if params["weighting"] == "tfidf":
            # Unused by TF-IDF: left out, so fingerprints and saved params stay as they were.
            for name in ("weighting", "k1", "b"):
                del params[name]
        return params

    def get_feature_names_out(self) -> np.ndarray:
        """The vocabulary, in column order."""
        self._check_fitted()
        return self.feature_names_

    def _check_fitted(self) -> None:
        if not hasattr(self, "program_matrix_"):
            raise NotFittedError("ProgramIndex is not fitted yet: call fit() or load() first")

    # -- the index interface (shared with FusedIndex) -----------------------------

    @property
    def n_programs_(self) -> int:
        """Number of fitted programs."""
        self._check_fitted()
        return len(self.program_ids_)

    def as_lexical(self) -> ProgramIndex:
        """The TF-IDF index: this one."""
        return self

    def get_embedder(self) -> Embedder | None:
        """The embedding model: None, TF-IDF embeds nothing."""
        return None

    def passage_keys(self) -> list[str]:
        """Embedding-cache fingerprints of the fitted programs: none."""
        return []

    def fingerprint(self) -> str:
        """Corpus, tokenizer versions and parameters of the fitted index."""
        self._check_fitted()
        return str(self.fingerprint_)

    def is_no_match(
        self, best_lexical: float, best_semantic: float | None = None, best_exemplar: float | None = None
    ) -> bool:
        """The ``no_match`` rule on a proposal's best TF-IDF cosine (``best_semantic``
        and ``best_exemplar`` are ignored: they let callers ask either index the same way)."""
        return best_lexical < self.no_match_threshold

    # -- transforming and explaining ----------------------------------------------

    def transform(self, proposals: Sequence[ProposalText]) -> sp.csr_matrix:
        """The L2-normalized TF-IDF rows of ``proposals`` over the program
        vocabulary (CSR, sorted indices, one row per proposal; a proposal that
        cannot be read, see :func:`proposal_error`, gets an empty row).

        A proposal's words that no program uses still count in its norm (with
        the IDF of an unseen term): a proposal about something else should
        score low, not be judged on the few words it happens to share. The
        cosine with program ``j`` is ``(rows @ program_matrix_.T)[i, j]``.
        """
        self._check_fitted()
        reject_string(proposals)
        return self._transform(*self.count_proposals(proposals))

    def _transform(self, counts_list: Sequence[ProposalCounts], forms: Sequence[Any] = ()) -> QueryRows:
        return QueryRows.of(wt.query_matrix(
            counts_list, self.vocabulary_, self.idf_, sublinear=self.sublinear_tf, unseen=self.unseen_idf_,
            kanji_prefix=KANJI_PREFIX, kanji_weight=self.kanji_weight,
        ), forms)

    def explain(self, queries: sp.csr_matrix, i: int, j: int, *, limit: int | None = MAX_TERMS) -> list[Term]:
        """The terms row ``i`` of ``queries`` (from :meth:`transform`) shares with program ``j``, as the
        proposal wrote them: at most ``limit``, or all (None: adding up to the pair's cosine)."""
        return self.explain_many(queries, i, [j], limit=limit)[0]

    def explain_many(self, queries: sp.csr_matrix, i: int, js: Sequence[int], *,
                     limit: int | None = MAX_TERMS) -> list[list[Term]]:
        """:meth:`explain` of row ``i`` with each program of ``js``: see :func:`matcher.explain.shared_terms`."""
        fitted = (self.program_matrix_, self.term_field_, self.feature_names_, FIELDS)
        return shared_terms(*fitted, queries, i, js, limit)

    # -- matching ------------------------------------------------------------

    def match(
        self, proposals: Sequence[ProposalText], *, top_k: int | None = None
    ) -> list[MatchResult]:
        """Rank the programs for each proposal. See :meth:`iter_match`."""
        return list(self.iter_match(proposals, top_k=top_k))

    def iter_match(
        self,
        proposals: Iterable[ProposalText],
        *,
        top_k: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[MatchResult]:
        """Yield one :class:`MatchResult` per proposal, in input order
        (``top_k`` overrides the fitted one). Proposals are scored
        ``chunk_size`` at a time, so memory is bounded by ``chunk_size ×
        n_programs`` whatever their number; ties in score go by catalogue
        order, so results are deterministic."""
        self._check_fitted()
        k = self.top_k if top_k is None else top_k
        for chunk in proposal_chunks(proposals, chunk_size):
            yield from self._match_chunk(chunk, self.transform(chunk), k)

    def _match_chunk(
        self, proposals: list[ProposalText], queries: sp.csr_matrix, k: int
    ) -> Iterator[MatchResult]:
        scores = (queries @ self.program_matrix_.T).toarray()
        k = min(k, scores.shape[1])
        for i, proposal in enumerate(proposals):
            error = proposal_error(proposal)
            if error is not None:
                yield assess(MatchResult(proposal_id=proposal.id, no_match=True, error=error))
            else:
                yield self._result(proposal.id, queries, i, scores[i], k)

    def _result(self, proposal_id: str, queries: sp.csr_matrix, i: int, row: np.ndarray, k: int) -> MatchResult:
        ordered = top_programs(row, k)
        kept = [j for j in ordered.tolist() if row[j] > 0]
        matches = [
            self.program_match(j, float(row[j]), terms)
            for j, terms in zip(kept, self.explain_many(queries, i, kept), strict=True)
        ]
        best = float(row[ordered[0]]) if len(ordered) else 0.0
        return assess(MatchResult(
            proposal_id=proposal_id,
            no_match=self.is_no_match(best),
            matches=matches,
            departments=rank_departments(row, self.program_department_lists_, k),
            best_lexical=best,
        ))

    def program_match(self, j: int, score: float, terms: list[Term], **scores: Any) -> ProgramMatch:
        """The :class:`ProgramMatch` of program ``j`` (``scores``: the
        semantic layer's extra fields)."""
        return ProgramMatch(
            program_id=self.program_ids_[j],
            program_name=self.program_names_[j],
            department=self.program_departments_[j],
            score=score,
            terms=terms,
            **scores,
        )

    # -- persistence ---------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the fitted index as ``arrays.npz`` + ``params.json`` (no pickle)."""
        self._check_fitted()
        return save_program_index(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> ProgramIndex:
        """Read an index written by :meth:`save`."""
        return load_program_index(cls, Path(directory))
