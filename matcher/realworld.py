"""The real-world benchmark (tests/data/realworld/): real proposals from
published municipal lists, with the department that took each one, matched
against real programs and a real city's department directory; scored by
department family (公園緑地課 and みどり公園課 are both 公園・緑地), by split
(whole cities held out).

Read by ``kyodo evaluate --real DIR``; the weights of matcher.duties were
chosen on the dev cities only (benchmarks/tune_duties.py).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from corpus import ProgramRecord
from corpus.departments import DepartmentDuty, load_department_duties
from matcher.duties import DEFAULT_WEIGHTS, DutyWeights, duty_rankings, merge
from matcher.results import MatchResult
from matcher.text import ProposalText

METHODS = ("programs", "duties", "programs + duties")


@dataclass(frozen=True)
class RealProposal:
    proposal: ProposalText
    city: str
    family: str
    split: str


@dataclass(frozen=True)
class RealBenchmark:
    proposals: list[RealProposal]
    programs: dict[str, list[ProgramRecord]]  # by split
    directory: list[DepartmentDuty]
    families: dict[str, str]  # department name → family


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_benchmark(folder: str | Path) -> RealBenchmark:
    """The files of the benchmark folder: proposals.jsonl, programs.jsonl,
    department_families.csv and one departments_*.csv directory."""
    folder = Path(folder)
    with (folder / "department_families.csv").open(encoding="utf-8") as f:
        families = {row["department"]: row["family"] for row in csv.DictReader(f)}
    directories = sorted(folder.glob("departments_*.csv"))
    if not directories:
        raise FileNotFoundError(f"{folder}: no departments_*.csv directory")
    directory = load_department_duties(directories[0])
    with directories[0].open(encoding="utf-8") as f:
        families.update({row["担当課"]: row["family"] for row in csv.DictReader(f) if row.get("family")})
    proposals = [
        RealProposal(
            ProposalText(r["id"], r["title"], r.get("summary") or r["title"]), r["city"], r["family"], r["split"]
        )
        for r in _jsonl(folder / "proposals.jsonl")
    ]
    programs: dict[str, list[ProgramRecord]] = {}
    for r in _jsonl(folder / "programs.jsonl"):
        programs.setdefault(r["split"], []).append(ProgramRecord(
            id=r["id"], name=r["name"], purpose=r.get("description") or "",
            department=r["department"], departments=(r["department"],),
        ))
    return RealBenchmark(proposals, programs, directory, families)


@dataclass(frozen=True)
class FamilyMetrics:
    n: int
    hit_at_1: float
    hit_at_3: float


def family_metrics(items: Sequence[RealProposal], rankings: Sequence[Sequence[str]], families: dict[str, str]) -> FamilyMetrics:
    """Share of items whose gold family is the first (among the first three)
    distinct families of the ranked departments.

    Distinct, because the benchmark's catalogue holds programs of many
    cities: three 子育て課 of three cities are one answer to "which kind of
    department", as are a city's several 班 of one 課 in the directory.
    """
    hit1 = hit3 = 0
    for item, departments in zip(items, rankings, strict=True):
        found = list(dict.fromkeys(f for f in (families.get(d) for d in departments) if f))
        hit1 += bool(found[:1]) and found[0] == item.family
        hit3 += item.family in found[:3]
    n = len(items)
    return FamilyMetrics(n, hit1 / n if n else 0.0, hit3 / n if n else 0.0)


def department_rankings(
    results: Sequence[MatchResult], by_duties: Sequence[Sequence[str]], weights: DutyWeights, k: int = 10
) -> dict[str, list[list[str]]]:
    """The three rankings of :data:`METHODS` for each proposal."""
    merged = [merge(r, d, k, weights) for r, d in zip(results, by_duties, strict=True)]
    return {
        "programs": [[d.department for d in r.departments] for r in results],
        "duties": [list(d[:k]) for d in by_duties],
        "programs + duties": [[d.department for d in r.departments] for r in merged],
    }


def evaluate_split(bench: RealBenchmark, split: str, make_index, weights: DutyWeights = DEFAULT_WEIGHTS) -> dict[str, FamilyMetrics]:
    """Department-family hit@1 / hit@3 of each method on one split.
    ``make_index``: a function returning a new unfitted index (one mode)."""
    items = [p for p in bench.proposals if p.split == split]
    proposals = [p.proposal for p in items]
    results = list(make_index().fit_match(bench.programs.get(split, []), proposals, top_k=10))
    by_duties = duty_rankings(make_index(), bench.directory, proposals)
    rankings = department_rankings(results, by_duties, weights)
    return {name: family_metrics(items, ranked, bench.families) for name, ranked in rankings.items()}
