"""Departments ranked by their duties (所掌事務) as well as through their
programs, so that a proposal no program fits still gets departments to ask.

A department's 所掌事務 is matched as a document of its own, by an index of
the same mode as the program index (TF-IDF, or TF-IDF fused with e5): the
department is a "program" whose 事業名 is its name, whose 取り組み内容 is its
duties and whose 施策名 is its 部. The two department rankings, through the
programs (:attr:`MatchResult.departments`) and by the duties, are merged by
weighted reciprocal rank fusion: rank scales differ between the two (fused
z-scores over programs, cosines over departments), ranks do not. Each merged
entry says which of the two gave it the larger share (``source``).

Weights chosen on the real-world benchmark's dev cities only
(``benchmarks/tune_duties.py``, docs/quality.md). Pure: no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from corpus import ProgramRecord
from corpus.departments import DepartmentDuty
from matcher.results import DepartmentScore, MatchResult
from matcher.text import ProposalText

# benchmarks/tune_duties.py on the dev cities (semantic mode; docs/quality.md),
# re-run on 2026-12-01 with the benchmark's 63 dev proposals and 114 dev
# programs: its rule (family hit@3, then hit@1, the first of the grid among
# ties) chose a steep fusion (k = 2: the first ranks of either list lead) with
# the duties at 1.5 times the programs (hit@3 0.587 against 0.556 at the
# earlier 60 / 1.0, hit@1 0.302 against 0.349); the program ranking's weight
# when the matcher says nothing fits tied at every value, 0 is the grid's first.
DEFAULT_RRF_K = 2.0
DEFAULT_DUTY_WEIGHT = 1.5
DEFAULT_LOW_PROGRAM_WEIGHT = 0.0


def as_program(department: DepartmentDuty) -> ProgramRecord:
    """The department as a document the program index can fit."""
    return ProgramRecord(
        id=department.name, name=department.name, activities=department.duties, policy=department.parent,
        department=department.name, departments=(department.name,),
    )


@dataclass(frozen=True)
class DutyWeights:
    rrf_k: float = DEFAULT_RRF_K
    duty_weight: float = DEFAULT_DUTY_WEIGHT
    low_program_weight: float = DEFAULT_LOW_PROGRAM_WEIGHT


DEFAULT_WEIGHTS = DutyWeights()


def duty_rankings(index, departments: Sequence[DepartmentDuty], proposals: Sequence[ProposalText]) -> list[list[str]]:
    """For each proposal, every department of the directory, best duties first.

    ``index``: an unfitted index of the program index's mode
    (:func:`matcher.indexes.make_index`); it is fitted here on the duties
    (and the proposals, for the IDF).
    """
    documents = [as_program(d) for d in departments if d.name]
    results = index.fit_match(documents, list(proposals), top_k=len(documents))
    return [[m.program_id for m in r.matches] for r in results]


def merge(result: MatchResult, by_duties: Sequence[str], k: int, weights: DutyWeights = DEFAULT_WEIGHTS) -> MatchResult:
    """``result`` with its departments re-ranked from both rankings.

    >>> r = MatchResult("p", no_match=False, confidence="high",
    ...                 departments=[DepartmentScore("公園緑地課", 0.4), DepartmentScore("環境政策課", 0.2)])
    >>> [(d.department, d.source) for d in merge(r, ["環境政策課", "防災課"], 3).departments]
    [('環境政策課', 'duties'), ('防災課', 'duties'), ('公園緑地課', 'program')]
    """
    program_weight = weights.low_program_weight if result.confidence == "low" else 1.0
    shares: dict[str, dict[str, float]] = {}
    for rank, entry in enumerate(result.departments, start=1):
        shares.setdefault(entry.department, {})["program"] = program_weight / (weights.rrf_k + rank)
    for rank, name in enumerate(by_duties, start=1):
        shares.setdefault(name, {})["duties"] = weights.duty_weight / (weights.rrf_k + rank)
    ranked = sorted(shares.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    merged = [
        DepartmentScore(department=name, score=sum(parts.values()), source=max(parts, key=lambda s: parts[s]))
        for name, parts in ranked[:k]
    ]
    return replace(result, departments=merged)


def with_duties(
    results: Sequence[MatchResult],
    proposals: Sequence[ProposalText],
    index,
    departments: Sequence[DepartmentDuty],
    *,
    k: int,
    weights: DutyWeights = DEFAULT_WEIGHTS,
) -> list[MatchResult]:
    """The results of ``proposals`` (same order) with departments from both
    their programs and the directory's duties."""
    if not departments:
        return list(results)
    rankings = duty_rankings(index, departments, proposals)
    return [merge(r, ranking, k, weights) for r, ranking in zip(results, rankings, strict=True)]
