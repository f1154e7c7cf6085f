"""Either index, behind one interface: what the orchestration (the nightly
rematch, online matching, the web app) calls, with no ``isinstance``.

Both :class:`~matcher.index.ProgramIndex` (TF-IDF) and
:class:`~matcher.fused.FusedIndex` (TF-IDF fused with e5) have ``mode``,
``comparable_scale``, ``n_programs_``, ``as_lexical()``, ``get_embedder()``,
``passage_keys()``, ``fingerprint()``, ``is_no_match(...)``, ``fit``,
``fit_match``, ``match``, ``iter_match``, ``save`` and ``load``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from matcher.counting import Counted
from matcher.embedder import Embedder
from matcher.fused import FusedIndex
from matcher.fusion import Exemplar
from matcher.index import DEFAULT_CHUNK_SIZE, ProgramIndex
from matcher.results import MatchResult
from matcher.text import ProgramLike, ProposalText


class MatchIndex(Protocol):
    """What both indexes offer; the callers need nothing else."""

    top_k: int

    @property
    def mode(self) -> str:
        """``"lexical"`` or ``"semantic"``."""

    @property
    def comparable_scale(self) -> tuple[float, float]:
        """Range of :attr:`ProgramMatch.comparable_score`, the TF-IDF cosine."""

    @property
    def n_programs_(self) -> int:
        """Number of fitted programs."""

    def as_lexical(self) -> ProgramIndex:
        """The fitted TF-IDF index (ranks without embedding anything)."""

    def get_embedder(self) -> Embedder | None:
        """The embedding model, or None (TF-IDF)."""

    def passage_keys(self) -> list[str]:
        """Embedding-cache fingerprints of the fitted programs (none for TF-IDF)."""

    def fingerprint(self) -> str:
        """Corpus, parameters (and model) of the fitted index."""

    def is_no_match(
        self, best_lexical: float, best_semantic: float | None = None, best_exemplar: float | None = None
    ) -> bool:
        """The index's no_match rule on a proposal's best scores."""

    def fit(self, programs: Sequence[ProgramLike], proposals: Sequence[ProposalText] = ()) -> MatchIndex:
        """Fit on the programs (and the proposals, for the IDF)."""

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
        """Fit, then match ``proposals``, tokenizing each once (``exemplars``,
        ``rejections``: accepted and rejected pairings, semantic mode only;
        ``counted``: their :meth:`count_proposals`, if at hand)."""

    def count_proposals(self, proposals: Sequence[ProposalText], *, n_jobs: int | None = None) -> Counted:
        """The proposals' term counts and written forms as the index counts
        them, in ``n_jobs`` processes (default: the index's)."""

    def match(self, proposals: Sequence[ProposalText], *, top_k: int | None = None) -> list[MatchResult]:
        """Rank the programs for each proposal."""

    def iter_match(
        self, proposals: Iterable[ProposalText], *, top_k: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[MatchResult]:
        """Rank the programs for each proposal, ``chunk_size`` at a time."""

    def save(self, directory: str | Path) -> Path:
        """Write the fitted index to ``directory`` (no pickle)."""


def make_index(*, mode: str, embedder: Embedder | None, top_k: int = 5, n_jobs: int = 1) -> MatchIndex:
    """An unfitted index of the mode (``"lexical"`` or ``"semantic"``, see
    :func:`matcher.semantic.resolve_mode`); ``n_jobs`` processes tokenize.

    >>> make_index(mode="lexical", embedder=None, top_k=3).mode
    'lexical'
    """
    lexical = ProgramIndex(top_k=top_k, n_jobs=n_jobs)
    if mode == "semantic":
        return FusedIndex(lexical=lexical, embedder=embedder, top_k=top_k)
    return lexical


def load_index(directory: str | Path, embedder: Embedder | None) -> MatchIndex | None:
    """The index saved in ``directory``: a fused one (``semantic.json``) is
    loaded as such when an embedder is at hand, else as its TF-IDF part
    (``lexical/``); None when nothing is saved there.

    Raises OSError, ValueError or KeyError for a folder of another format or
    model (the caller refits).
    """
    directory = Path(directory)
    if (directory / "semantic.json").exists():
        if embedder is not None:
            return FusedIndex.load(directory, embedder=embedder)
        directory = directory / "lexical"
    if not (directory / "params.json").exists():
        return None
    return ProgramIndex.load(directory)
