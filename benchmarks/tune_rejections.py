"""Choose the weight of rejected pairings (matcher.fusion.DEFAULT_REJECTION_WEIGHT)
on the dev split, with the coordinator's decisions simulated from gold:
every in-scope proposal is accepted for its gold program(s), and every
proposal whose first suggestion is wrong has that pair rejected. Each
proposal is ranked with the decisions of the OTHER proposals only (leave one
out: FusedIndex never compares a proposal with itself).

    .venv/bin/python benchmarks/tune_rejections.py            # dev: the grid
    .venv/bin/python benchmarks/tune_rejections.py --heldout  # once, after: with and without

Objective on dev: MRR, then hit@1 (matcher.evaluate.score).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from corpus import load_programs
from matcher.evaluate import GoldProposal, Ranked, score
from matcher.fusion import DEFAULT_REJECTION_WEIGHT
from matcher.index import ProposalText
from matcher.semantic import Exemplar, FusedIndex, shared_embedder

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)


def load(*names: str) -> list[GoldProposal]:
    items = []
    for name in names:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            items.append(GoldProposal(ProposalText(r["id"], r["title"], r["body"]), tuple(r["gold"]), r.get("kind", "")))
    return items


def ranked(programs, items, exemplars, rejections, weight: float) -> list[Ranked]:
    index = FusedIndex(embedder=shared_embedder(), rejection_weight=weight)
    results = index.fit_match(programs, [i.proposal for i in items], top_k=len(programs),
                              exemplars=exemplars, rejections=rejections)
    return [Ranked([m.program_id for m in r.matches], r.no_match) for r in results]


def simulate(programs, items) -> tuple[list[Exemplar], list[Exemplar]]:
    """Accepted gold pairs, and the wrong first suggestions rejected."""
    accepted = [Exemplar(g, i.proposal) for i in items for g in i.gold]
    first = ranked(programs, items, accepted, [], 0.0)
    rejected = [
        Exemplar(r.program_ids[0], i.proposal)
        for i, r in zip(items, first, strict=True)
        if r.program_ids and r.program_ids[0] not in i.gold
    ]
    return accepted, rejected


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--heldout", action="store_true", help="report the held-out splits (after tuning)")
    heldout = parser.parse_args().heldout
    programs = load_programs()
    items = load("heldout.jsonl", "heldout_paraphrase.jsonl") if heldout else load("devset.jsonl")
    accepted, rejected = simulate(programs, items)
    print(f"{len(items)} proposals, {len(accepted)} accepted pairs, {len(rejected)} rejected pairs")
    weights = (0.0, DEFAULT_REJECTION_WEIGHT) if heldout else GRID
    for weight in weights:
        m = score(items, ranked(programs, items, accepted, rejected, weight))
        print(f"rejection weight {weight}: hit@1 {m.hit_at_1:.3f} hit@3 {m.hit_at_3:.3f} MRR {m.mrr:.3f}")


if __name__ == "__main__":
    main()
