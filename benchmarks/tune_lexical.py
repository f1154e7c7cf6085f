"""Compare the lexical index's program weightings on dev only: TF-IDF (the
default) against BM25 over a grid of k1 × b (issue 14, item 2).

    .venv/bin/python benchmarks/tune_lexical.py

Two dev sets, lexical mode, through the existing evaluation functions:

* tests/data/devset.jsonl, ordinary and paraphrase proposals: hit@1 / hit@3 /
  MRR of the gold program (:func:`matcher.evaluate.rank_with_index`, ``score``);
* the real-world benchmark's dev cities (tests/data/realworld, split "dev"):
  department-family hit@1 / hit@3 through the programs, by the duties of the
  directory, and both merged (:func:`matcher.realworld.evaluate_split`; the
  duties index gets the same weighting).

Neither held-out file (tests/data/heldout*.jsonl) nor the held-out cities are
read here. The real-world files grow while people add records: the counts
used are printed. A setting is a candidate when it loses on neither the
devset MRR (all 88 in-scope) nor the real dev-city family hit@3 (programs +
duties) and gains on one; gains are also given in proposals, since one
proposal is 1/88 of the MRR's items and about 2 % of the real hit@3.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from corpus import load_programs
from matcher.evaluate import GoldProposal, Metrics, rank_with_index, score
from matcher.index import ProgramIndex, ProposalText
from matcher.realworld import METHODS, FamilyMetrics, evaluate_split, load_benchmark

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
DEV = DATA / "devset.jsonl"
REAL = DATA / "realworld"
K1 = (0.9, 1.2, 1.5, 2.0)
B = (0.3, 0.5, 0.75)
KINDS = ("ordinary", "paraphrase", "all")


def variants() -> list[tuple[str, dict[str, Any]]]:
    """TF-IDF first (the reference), then the BM25 grid."""
    grid = [(f"bm25 k1={k1} b={b}", {"weighting": "bm25", "k1": k1, "b": b}) for k1, b in itertools.product(K1, B)]
    return [("tfidf (default)", {})] + grid


def load_dev() -> list[GoldProposal]:
    items = []
    for line in DEV.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            items.append(GoldProposal(ProposalText(r["id"], r["title"], r["body"]), tuple(r["gold"]), r.get("kind", "")))
    return items


def devset_metrics(programs, items: list[GoldProposal], params: dict[str, Any]) -> dict[str, Metrics]:
    rankings = rank_with_index(ProgramIndex(**params), programs, items)
    out = {"all": score(items, rankings)}
    for kind in KINDS[:-1]:
        keep = [n for n, item in enumerate(items) if item.kind == kind]
        out[kind] = score([items[n] for n in keep], [rankings[n] for n in keep])
    return out


def row(name: str, dev: dict[str, Metrics], real: dict[str, FamilyMetrics]) -> str:
    cells = [name]
    cells += [f"{dev[k].hit_at_1:.3f} {dev[k].hit_at_3:.3f} {dev[k].mrr:.3f}" for k in KINDS]
    cells += [f"{real[m].hit_at_1:.3f} {real[m].hit_at_3:.3f}" for m in METHODS]
    return "| " + " | ".join(cells) + " |"


def header() -> str:
    names = ["variant"] + [f"{k}: h@1 h@3 MRR" for k in KINDS] + [f"real {m}: h@1 h@3" for m in METHODS]
    return "| " + " | ".join(names) + " |\n|" + "---|" * len(names)


def main() -> None:
    programs = load_programs()
    items = load_dev()
    bench = load_benchmark(REAL)
    real_dev = [p for p in bench.proposals if p.split == "dev"]
    counts = {k: sum(1 for i in items if i.kind == k and i.gold) for k in KINDS[:-1]}
    print(f"devset: {len(items)} proposals ({sum(1 for i in items if i.gold)} in scope: {counts}), "
          f"{len(programs)} programs")
    print(f"real dev cities: {len(real_dev)} proposals of {len({p.city for p in real_dev})} cities, "
          f"{len(bench.programs.get('dev', []))} dev programs, directory of {len(bench.directory)} departments")
    print()
    print(header())
    figures = []
    for name, params in variants():
        dev = devset_metrics(programs, items, params)
        real = evaluate_split(bench, "dev", lambda params=params: ProgramIndex(**params))
        figures.append((name, dev, real))
        print(row(name, dev, real), flush=True)
    report_candidates(figures, dev_n=figures[0][1]["all"].n_in_scope, real_n=len(real_dev))


def report_candidates(figures, *, dev_n: int, real_n: int) -> None:
    """Settings that lose on neither objective and gain on one, best first."""
    _, ref_dev, ref_real = figures[0]
    ref = (ref_dev["all"].mrr, ref_real["programs + duties"].hit_at_3)
    found = []
    for name, dev, real in figures[1:]:
        mrr, hit3 = dev["all"].mrr, real["programs + duties"].hit_at_3
        gain = (round(mrr - ref[0], 6), round(hit3 - ref[1], 6))
        if min(gain) >= 0 and max(gain) > 0:
            found.append((gain[1], gain[0], name))
    print()
    print(f"reference tfidf: devset MRR {ref[0]:.3f}, real dev programs + duties hit@3 {ref[1]:.3f}")
    if not found:
        print("no BM25 setting beats TF-IDF on dev (no gain on one objective without a loss on the other)")
    for hit3, mrr, name in sorted(found, reverse=True):
        print(f"candidate {name}: MRR {mrr:+.3f} (reciprocal ranks {mrr * dev_n:+.1f} of {dev_n}), "
              f"real hit@3 {hit3:+.3f} ({round(hit3 * real_n):+d} of {real_n} proposals)")


if __name__ == "__main__":
    main()
