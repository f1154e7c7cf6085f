"""The ``related`` key of ``kyodo match`` lines: each proposal of a file with
the file's other proposals most like it (:mod:`matcher.related`), computed
beside the program ranking."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, TypeVar

from threadpoolctl import threadpool_limits

from matcher.counting import Counted
from matcher.related import DEFAULT_RELATED_K, Related, build_space, related_lists
from matcher.results import MatchResult
from matcher.text import ProposalText

if TYPE_CHECKING:
    from matcher.embedder import Embedder

# Ranked results held while the related proposals are still being found
# beside the ranking (bounds the memory of a long file: about 5 KB each).
HELD_RESULTS = 10_000

_Found = TypeVar("_Found")


@dataclass(frozen=True)
class MatchWithRelated(MatchResult):
    """A program ranking that also carries the proposal's related proposals
    (``kyodo match`` writes them as ``related``)."""

    related: tuple[Related, ...] = ()

    def to_dict(self, *, digits: int = 4) -> dict[str, Any]:
        data = super().to_dict(digits=digits)
        data["related"] = [{"proposal_id": r.proposal_id, "score": round(r.score, digits)} for r in self.related]
        return data


def with_related(results: Iterable[MatchResult], related: Sequence[Sequence[Related]]) -> Iterator[MatchResult]:
    """``results`` (in the order of the proposals ``related`` was found for),
    each with its related proposals."""
    names = [f.name for f in fields(MatchResult)]
    for result, found in zip(results, related, strict=True):
        yield MatchWithRelated(**{name: getattr(result, name) for name in names}, related=tuple(found))


def related_by_position(
    proposals: Sequence[ProposalText], *, mode: str, embedder: Embedder | None, k: int = DEFAULT_RELATED_K,
    n_jobs: int = 1, counted: Counted | None = None,
) -> list[list[Related]]:
    """:func:`related_lists` of a file's proposals, one list per proposal in
    order, without shared terms; ids may repeat (each copy is another
    proposal, never related to itself). ``counted``: see :func:`build_space`;
    ``n_jobs`` processes tokenize and as many threads score the pairs."""
    renamed = [ProposalText(str(i), p.title, p.body) for i, p in enumerate(proposals)]
    space = build_space(renamed, mode=mode, embedder=embedder, n_jobs=n_jobs, counted=counted)
    ids = [p.id for p in proposals]
    return [
        [Related(ids[int(r.proposal_id)], r.score, r.lexical, r.semantic) for r in found]
        for found in related_lists(space, k=k, with_terms=False, threads=n_jobs)
    ]


def with_related_beside(
    results: Iterable[MatchResult], find: Callable[[], Sequence[Sequence[Related]]], *, overlap: bool,
    rank_first: bool = False,
) -> Iterator[MatchResult]:
    """``results`` with their related proposals, ``find()``.

    With ``overlap``, ``find`` runs in a thread while the ranking goes on:
    the pair scores are BLAS and sparse products that release the GIL, the
    ranking is mostly Python, so on two cores the two take about the time of
    the longer. Up to :data:`HELD_RESULTS` ranked results wait for it. The
    caller must not fork meanwhile (the ranking's fit tokenizes in its own
    process). With ``rank_first`` the thread starts once the first result
    is ranked: the fit has then embedded every proposal, and ``find`` reads
    the vectors from the embedder's cache instead of embedding them again.
    """
    if not overlap:
        yield from with_related(results, find())
        return
    ranked = iter(results)
    held = list(islice(ranked, 1)) if rank_first else []
    with ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(_one_blas_thread, find)
        for result in ranked:
            held.append(result)
            if job.done() or len(held) >= HELD_RESULTS:
                break
        found = job.result()
    yield from with_related(chain(held, ranked), found)


def _one_blas_thread(find: Callable[[], _Found]) -> _Found:
    """``find()`` with BLAS on one thread: beside the ranking, BLAS's own
    threads would spin on the core the ranking needs (measured: 1.15× the
    plain pipeline's wall time against 1.06×, docs/benchmarks.md)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return find()
