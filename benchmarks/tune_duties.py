"""Choose matcher.duties' fusion weights on the real-world benchmark's dev
cities only (tests/data/realworld, split "dev"); held-out cities are never
read here.

    .venv/bin/python benchmarks/tune_duties.py [--mode lexical|semantic]

Grid: reciprocal-rank constant k × weight of the duties ranking × weight of
the program ranking when the matcher says nothing fits (低). Objective:
department-family hit@3, then hit@1; ties go to the first setting of the
grid. Prints every setting, best last, then the one chosen.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from matcher.duties import DutyWeights, duty_rankings
from matcher.indexes import make_index
from matcher.realworld import department_rankings, family_metrics, load_benchmark
from matcher.semantic import resolve_mode

FOLDER = Path(__file__).resolve().parents[1] / "tests" / "data" / "realworld"
GRID = {
    # 60 first: the constant of Cormack et al.'s reciprocal rank fusion wins ties.
    "rrf_k": (60.0, 30.0, 10.0, 5.0, 2.0),
    "duty_weight": (0.5, 1.0, 1.5, 2.0, 3.0),
    "low_program_weight": (0.0, 0.5, 1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("lexical", "semantic"), default=None)
    mode, embedder, _ = resolve_mode(parser.parse_args().mode)
    bench = load_benchmark(FOLDER)
    items = [p for p in bench.proposals if p.split == "dev"]
    proposals = [p.proposal for p in items]
    results = list(make_index(mode=mode, embedder=embedder).fit_match(bench.programs["dev"], proposals, top_k=10))
    by_duties = duty_rankings(make_index(mode=mode, embedder=embedder), bench.directory, proposals)
    scored = []
    for k, w, low in itertools.product(*GRID.values()):
        weights = DutyWeights(rrf_k=k, duty_weight=w, low_program_weight=low)
        merged = department_rankings(results, by_duties, weights)["programs + duties"]
        m = family_metrics(items, merged, bench.families)
        scored.append(((round(m.hit_at_3, 4), round(m.hit_at_1, 4)), weights))
    for objective, weights in sorted(scored, key=lambda s: s[0]):
        print(f"hit@3 {objective[0]:.3f} hit@1 {objective[1]:.3f}  {weights}")
    best = max(scored, key=lambda s: s[0])  # the first of the grid among ties
    print(f"chosen: {best[1]}")
    print(f"mode {mode}: {len(items)} dev proposals, {len(bench.programs['dev'])} dev programs")


if __name__ == "__main__":
    main()
