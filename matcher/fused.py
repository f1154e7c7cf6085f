"""The fused index: TF-IDF (:class:`matcher.index.ProgramIndex`) and e5
embeddings (:class:`matcher.embedder.Embedder`), z-score fusion per proposal.

The explanation stays lexical: a match's ``terms`` are the TF-IDF shared terms
(:meth:`ProgramIndex.explain`), and a pairing the embedding carried says so
(``carried_by="semantic"``) instead of pretending those words explain it.
Proposals the coordinator accepted for a program (:class:`Exemplar`) pull a
new proposal close to them in meaning towards that program.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from matcher.confidence import assess
from matcher.counting import Counted
from matcher.embedder import DIM, Embedder, passage_key
from matcher.explain import rank_departments_in_order
from matcher.fusion import (
    DEFAULT_EMBED_FIELDS,
    DEFAULT_EXEMPLAR_WEIGHT,
    DEFAULT_LEXICAL_WEIGHT,
    DEFAULT_NO_MATCH_EXEMPLAR_FACTOR,
    DEFAULT_NO_MATCH_EXEMPLAR_THRESHOLD,
    DEFAULT_NO_MATCH_SEMANTIC_FACTOR,
    DEFAULT_NO_MATCH_THRESHOLD,
    DEFAULT_REJECTION_WEIGHT,
    DEFAULT_SEMANTIC_WEIGHT,
    Exemplar,
    bank_matrix,
    carried_by,
    exemplar_lift,
    fuse,
    rejection_push,
)
from matcher.index import DEFAULT_CHUNK_SIZE, FIELDS, ProgramIndex
from matcher.results import MatchResult, ProgramMatch
from matcher.text import ProgramLike, ProposalText, proposal_chunks, proposal_error, proposal_text


class _Scores(NamedTuple):
    """The score matrices of a chunk (proposals × programs)."""

    fused: np.ndarray
    base: np.ndarray  # fused without the exemplar term
    lexical: np.ndarray
    semantic: np.ndarray
    exemplar: np.ndarray  # nearest exemplar's cosine, NaN where none
    nearest: np.ndarray  # its position in exemplar_ids_, -1 where none


class FusedIndex(BaseEstimator):
    """Rank programs by TF-IDF fused with e5 embeddings (z-score fusion).

    Parameters
    ----------
    lexical : ProgramIndex or None
        The TF-IDF index (unfitted; it is fitted by :meth:`fit`). None means
        ``ProgramIndex()`` with its defaults.
    embedder : Embedder or None
        None means :func:`matcher.semantic.shared_embedder` (the bundled,
        verified model).
    lexical_weight, semantic_weight : float
        Weights of the two z-scores. ``lexical_weight=0`` ranks by e5 alone.
    embed_fields : sequence of str
        Program fields joined into the text the model embeds.
    top_k : int
        Programs returned per proposal.
    no_match_threshold, no_match_semantic_factor : float
        ``no_match`` when ``best TF-IDF cosine + no_match_semantic_factor ×
        best e5 cosine`` is below ``no_match_threshold`` (bests over all
        programs): the fused z-scores are relative to one proposal and cannot
        say that nothing fits.
    exemplar_weight, rejection_weight : float
        Weights of :func:`matcher.fusion.exemplar_lift` of the e5 cosine with each program's nearest
        accepted proposal (:class:`Exemplar`, passed to :meth:`fit`; 0 without one, or when no closer
        than two unrelated proposals) and of :func:`matcher.fusion.rejection_push` (rejected pairings).
    no_match_exemplar_factor, no_match_exemplar_threshold : float
        A proposal flagged by the rule above is cleared when ``best TF-IDF +
        no_match_semantic_factor × best e5 + no_match_exemplar_factor ×
        nearest exemplar cosine`` reaches ``no_match_exemplar_threshold``.

    Examples
    --------
    >>> from corpus import ProgramRecord
    >>> programs = [
    ...     ProgramRecord(id="a", name="防災講座", purpose="市民の防災意識を高める"),
    ...     ProgramRecord(id="b", name="広報紙の発行", purpose="市政情報を分かりやすく伝える"),
    ... ]
    >>> index = FusedIndex(top_k=1).fit(programs)
    >>> [m.program_id for m in index.match([ProposalText("p", body="地震に備える勉強会を開きたい")])[0].matches]
    ['a']
    """

    #: The index interface shared with :class:`ProgramIndex`.
    mode = "semantic"
    #: Range of the score comparable across proposals: the TF-IDF cosine (``score`` is a fused z-score).
    comparable_scale: tuple[float, float] = ProgramIndex.comparable_scale

    def __init__(
        self,
        *,
        lexical: ProgramIndex | None = None,
        embedder: Embedder | None = None,
        lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
        semantic_weight: float = DEFAULT_SEMANTIC_WEIGHT,
        embed_fields: Sequence[str] = DEFAULT_EMBED_FIELDS,
        top_k: int = 5,
        no_match_threshold: float = DEFAULT_NO_MATCH_THRESHOLD,
        no_match_semantic_factor: float = DEFAULT_NO_MATCH_SEMANTIC_FACTOR,
        exemplar_weight: float = DEFAULT_EXEMPLAR_WEIGHT,
        no_match_exemplar_factor: float = DEFAULT_NO_MATCH_EXEMPLAR_FACTOR,
        no_match_exemplar_threshold: float = DEFAULT_NO_MATCH_EXEMPLAR_THRESHOLD,
        rejection_weight: float = DEFAULT_REJECTION_WEIGHT,
    ):
        self.lexical = lexical
        self.embedder = embedder
        self.lexical_weight = lexical_weight
        self.semantic_weight = semantic_weight
        self.embed_fields = embed_fields
        self.top_k = top_k
        self.no_match_threshold = no_match_threshold
        self.no_match_semantic_factor = no_match_semantic_factor
        self.exemplar_weight = exemplar_weight
        self.no_match_exemplar_factor = no_match_exemplar_factor
        self.no_match_exemplar_threshold = no_match_exemplar_threshold
        self.rejection_weight = rejection_weight

    # -- fitting -------------------------------------------------------------

    def _validate(self) -> None:
        unknown = set(self.embed_fields) - set(FIELDS)
        if unknown or not self.embed_fields:
            raise ValueError(f"embed_fields must be a non-empty subset of {FIELDS}")
        if min(self.lexical_weight, self.semantic_weight, self.exemplar_weight, self.rejection_weight) < 0:
            raise ValueError("weights must be non-negative")
        if self.lexical_weight == 0 and self.semantic_weight == 0:
            raise ValueError("at least one weight must be positive")
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")

    def _new_lexical(self) -> ProgramIndex:
        # A clone: fitting must not change the estimator passed as a parameter.
        lexical = ProgramIndex() if self.lexical is None else clone(self.lexical)
        return lexical.set_params(top_k=self.top_k)

    def get_embedder(self) -> Embedder:
        """The embedding model: the ``embedder`` parameter, or the shared one."""
        if not hasattr(self, "embedder_"):
            from matcher.semantic import shared_embedder

            self.embedder_ = self.embedder if self.embedder is not None else shared_embedder()
        return self.embedder_

    # Kept for callers written before get_embedder().
    _embedder = get_embedder

    def program_text(self, program: ProgramLike) -> str:
        """The text the model embeds for a program."""
        fields = program.text_fields()
        return "\n".join(fields.get(f, "") for f in self.embed_fields if fields.get(f))

    def fit(
        self,
        programs: Sequence[ProgramLike],
        proposals: Sequence[ProposalText] = (),
        exemplars: Sequence[Exemplar] = (),
        rejections: Sequence[Exemplar] = (),
    ) -> FusedIndex:
        """Fit the TF-IDF index (see :meth:`ProgramIndex.fit`), embed the
        programs and the ``exemplars`` (those of programs not in ``programs``
        are ignored).

        Returns
        -------
        self
        """
        self._validate()
        self.lexical_ = self._new_lexical()
        self.lexical_.fit(programs, proposals)
        self._fit_semantic(list(programs), exemplars, rejections)
        return self

    def _fit_semantic(
        self, programs: list[ProgramLike], exemplars: Sequence[Exemplar] = (), rejections: Sequence[Exemplar] = ()
    ) -> None:
        texts = [self.program_text(p) for p in programs]
        embedder = self.get_embedder()
        self.program_vectors_ = embedder.embed(texts, role="passage")
        self.program_keys_ = [passage_key(t, model_version=embedder.model_version) for t in texts]
        self.model_version_ = embedder.model_version
        position = {pid: j for j, pid in enumerate(self.lexical_.program_ids_)}
        kept = [e for e in exemplars if e.program_id in position]
        self.exemplar_vectors_ = embedder.embed([proposal_text(e.proposal) for e in kept], role="query")
        self.exemplar_programs_ = np.asarray([position[e.program_id] for e in kept], dtype=np.int64)
        self.exemplar_ids_ = [e.proposal.id for e in kept]
        # Rejected pairings: the same bank, subtracted (a proposal like one the
        # coordinator rejected for a program is pushed away from it).
        pushed = [e for e in rejections if e.program_id in position]
        self.rejection_vectors_ = embedder.embed([proposal_text(e.proposal) for e in pushed], role="query")
        self.rejection_programs_ = np.asarray([position[e.program_id] for e in pushed], dtype=np.int64)
        self.rejection_ids_ = [e.proposal.id for e in pushed]

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
        """Fit on ``programs`` (and ``proposals`` for the IDF), ``exemplars`` and ``rejections``
        (rejected pairings), then match ``proposals``, tokenizing each proposal once (see
        :meth:`ProgramIndex.fit_match`). A proposal that is itself an exemplar is never compared with itself."""
        self._validate()
        proposals = list(proposals)
        self.lexical_ = self._new_lexical()
        queries = self.lexical_.fit_transform(programs, proposals, counted=counted)
        self._fit_semantic(list(programs), exemplars, rejections)
        k = self.top_k if top_k is None else top_k
        for start in range(0, len(proposals), chunk_size):
            end = start + chunk_size
            yield from self._match_chunk(proposals[start:end], k, queries[start:end])

    def count_proposals(self, proposals: Sequence[ProposalText], *, n_jobs: int | None = None) -> Counted:
        """The term counts and written forms of ``proposals`` as the TF-IDF part counts them."""
        return self._new_lexical().count_proposals(proposals, n_jobs=n_jobs)

    def _check_fitted(self) -> None:
        if not hasattr(self, "program_vectors_"):
            raise NotFittedError("FusedIndex is not fitted yet: call fit() or load() first")

    # -- the index interface (shared with ProgramIndex) ---------------------------

    @property
    def n_programs_(self) -> int:
        """Number of fitted programs."""
        self._check_fitted()
        return len(self.lexical_.program_ids_)

    def as_lexical(self) -> ProgramIndex:
        """The fitted TF-IDF part (``lexical_``): ranks without embedding."""
        self._check_fitted()
        return self.lexical_

    def passage_keys(self) -> list[str]:
        """Embedding-cache fingerprints of the fitted programs' texts."""
        self._check_fitted()
        return list(self.program_keys_)

    def fingerprint(self) -> str:
        """Corpus and parameters of the fitted index, the model and the fusion
        parameters: a fused and a TF-IDF index never compare equal."""
        self._check_fitted()
        digest = hashlib.sha256(self.lexical_.fingerprint_.encode())
        digest.update(self.model_version_.encode())
        digest.update(repr(sorted(self._public_params().items())).encode())
        return digest.hexdigest()

    def is_no_match(
        self, best_lexical: float, best_semantic: float | None = None, best_exemplar: float | None = None
    ) -> bool:
        """The ``no_match`` rule on a proposal's best TF-IDF cosine, best e5
        cosine and nearest exemplar's e5 cosine (None: no exemplar).

        Without an e5 score (scores stored by a lexical run) the TF-IDF index's
        own rule decides: the rule must be that of the index that scored them.

        >>> index = FusedIndex()
        >>> index.is_no_match(0.05, 0.85), index.is_no_match(0.05, 0.85, 0.93), index.is_no_match(0.05, 0.85, 0.80)
        (True, False, True)
        """
        if best_semantic is None:
            return self.lexical_.is_no_match(best_lexical)
        both = best_lexical + self.no_match_semantic_factor * best_semantic
        if both >= self.no_match_threshold:
            return False
        if best_exemplar is None:
            return True
        return both + self.no_match_exemplar_factor * best_exemplar < self.no_match_exemplar_threshold

    # -- matching ------------------------------------------------------------

    def match(self, proposals: Sequence[ProposalText], *, top_k: int | None = None) -> list[MatchResult]:
        """Rank the programs for each proposal. See :meth:`iter_match`."""
        return list(self.iter_match(proposals, top_k=top_k))

    def iter_match(
        self, proposals: Iterable[ProposalText], *, top_k: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[MatchResult]:
        """Yield one :class:`MatchResult` per proposal, in input order.

        Each match carries ``score`` (the fused score, a weighted sum of
        z-scores: it ranks programs for one proposal and is not comparable
        across proposals), ``lexical_score`` (TF-IDF cosine, the sum of its
        ``terms``' weights), ``semantic_score`` (e5 cosine) and ``carried_by``.
        """
        self._check_fitted()
        k = self.top_k if top_k is None else top_k
        for chunk in proposal_chunks(proposals, chunk_size):
            yield from self._match_chunk(chunk, k)

    def score_matrices(
        self, proposals: Sequence[ProposalText], queries: sp.csr_matrix | None = None
    ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, list[str | None]]:
        """TF-IDF query rows (:meth:`ProgramIndex.transform`, or ``queries``
        if given), TF-IDF cosines and e5 cosines of each proposal with every
        program, and why a proposal could not be read (or None)."""
        queries, lexical, semantic, errors, _ = self._score_matrices(proposals, queries)
        return queries, lexical, semantic, errors

    def _score_matrices(
        self, proposals: Sequence[ProposalText], queries: sp.csr_matrix | None = None
    ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, list[str | None], np.ndarray]:
        """:meth:`score_matrices`, plus the e5 vectors of the readable
        proposals (one row per proposal whose error is None, in order), so
        that the exemplar term does not embed them again."""
        lex = self.lexical_
        if queries is None:
            queries = lex.transform(proposals)
        errors = [proposal_error(p) for p in proposals]
        lexical = (queries @ lex.program_matrix_.T).toarray()
        ok = [i for i, e in enumerate(errors) if e is None]
        semantic = np.zeros_like(lexical)
        vectors = np.zeros((0, DIM), dtype=np.float32)
        if ok:
            vectors = self.get_embedder().embed([proposal_text(proposals[i]) for i in ok], role="query")
            semantic[ok] = vectors.astype(np.float64) @ self.program_vectors_.astype(np.float64).T
        return queries, lexical, semantic, errors, vectors

    def exemplar_matrix(
        self,
        proposals: Sequence[ProposalText],
        ok: Sequence[bool] | None = None,
        vectors: np.ndarray | None = None,
        *,
        rejected: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The e5 cosine of each proposal with each program's nearest exemplar
        (NaN where a program has none other than the proposal itself), and
        that exemplar's position in ``exemplar_ids_`` (-1 where none); with
        ``rejected``, the same for the rejected pairings (``rejection_ids_``).

        ``ok``: rows to compute (the others stay NaN), e.g. the proposals that
        could be read; ``vectors``: their e5 vectors if already at hand.
        """
        n, m = len(proposals), len(self.lexical_.program_ids_)
        rows = [i for i in range(n) if ok is None or ok[i]]
        bank = (
            (self.rejection_vectors_, self.rejection_programs_, self.rejection_ids_)
            if rejected
            else (self.exemplar_vectors_, self.exemplar_programs_, self.exemplar_ids_)
        )
        if len(bank[2]) and rows and vectors is None:
            vectors = self.get_embedder().embed([proposal_text(proposals[i]) for i in rows], role="query")
        own = [proposals[i].id for i in rows]
        return bank_matrix(vectors if vectors is not None else np.zeros((0, DIM)), rows, own, bank, (n, m))

    def _match_chunk(
        self, proposals: list[ProposalText], k: int, queries: sp.csr_matrix | None = None
    ) -> Iterator[MatchResult]:
        queries, lexical, semantic, errors, vectors = self._score_matrices(proposals, queries)
        base = fuse(lexical, semantic, lexical_weight=self.lexical_weight, semantic_weight=self.semantic_weight)
        ok = [e is None for e in errors]
        exemplar, nearest = self.exemplar_matrix(proposals, ok, vectors)
        rejection, _ = self.exemplar_matrix(proposals, ok, vectors, rejected=True)
        fused = base + self.exemplar_weight * exemplar_lift(exemplar) - self.rejection_weight * rejection_push(exemplar, rejection)
        scores = _Scores(fused, base, lexical, semantic, exemplar, nearest)
        k = min(k, fused.shape[1])
        order_tiebreak = np.arange(fused.shape[1])
        for i, proposal in enumerate(proposals):
            error = errors[i]
            if error is not None:
                yield assess(MatchResult(proposal_id=proposal.id, no_match=True, error=error))
                continue
            ranking = np.lexsort((order_tiebreak, -fused[i]))
            matches = [
                self._program_match(queries, scores, i, j, position)
                for position, j in enumerate(ranking[:k].tolist())
            ]
            best_lexical, best_semantic = float(lexical[i].max()), float(semantic[i].max())
            best_exemplar = float(np.nanmax(exemplar[i])) if (nearest[i] >= 0).any() else None
            yield assess(MatchResult(
                proposal_id=proposal.id,
                no_match=self.is_no_match(best_lexical, best_semantic, best_exemplar),
                matches=matches,
                departments=rank_departments_in_order(fused[i], ranking, self.lexical_.program_department_lists_, k),
                best_lexical=best_lexical,
                best_semantic=best_semantic,
                best_exemplar=best_exemplar,
            ))

    def _program_match(
        self, queries: sp.csr_matrix, scores: _Scores, i: int, j: int, position: int
    ) -> ProgramMatch:
        """Program ``j`` at ``position`` of proposal ``i``'s fused ranking."""
        near = int(scores.nearest[i, j])
        return self.lexical_.program_match(
            j,
            float(scores.fused[i, j]),
            self.lexical_.explain(queries, i, j),
            lexical_score=float(scores.lexical[i, j]),
            semantic_score=float(scores.semantic[i, j]),
            carried_by=carried_by(position, scores.lexical[i], scores.base[i], j),
            exemplar_id=self.exemplar_ids_[near] if near >= 0 else None,
            exemplar_score=float(scores.exemplar[i, j]) if near >= 0 else None,
        )

    # -- persistence ---------------------------------------------------------

    def _public_params(self) -> dict[str, Any]:
        return {
            "lexical_weight": self.lexical_weight,
            "semantic_weight": self.semantic_weight,
            "embed_fields": list(self.embed_fields),
            "top_k": self.top_k,
            "no_match_threshold": self.no_match_threshold,
            "no_match_semantic_factor": self.no_match_semantic_factor,
            "exemplar_weight": self.exemplar_weight,
            "no_match_exemplar_factor": self.no_match_exemplar_factor,
            "no_match_exemplar_threshold": self.no_match_exemplar_threshold,
            "rejection_weight": self.rejection_weight,
        }

    def save(self, directory: str | Path) -> Path:
        """Write the TF-IDF index (``lexical/``) and the program embeddings with
        their fingerprints (``semantic.npz`` + ``semantic.json``), no pickle."""
        from matcher.store import save_fused_index

        self._check_fitted()
        return save_fused_index(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path, *, embedder: Embedder | None = None) -> FusedIndex:
        """Read an index written by :meth:`save`; its program vectors also
        seed the embedder's cache."""
        from matcher.store import load_fused_index

        return load_fused_index(cls, Path(directory), embedder)
