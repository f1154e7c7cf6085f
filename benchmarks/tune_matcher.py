"""Choose the matcher's stop words, field weights and no_match rule on the dev
split only (tests/data/devset.jsonl); the held-out split is never read here.

    .venv/bin/python benchmarks/tune_matcher.py

Prints the grid, the greedy stop-word selection and the threshold table that
docs/quality.md reports.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

from corpus import load_programs
from matcher.evaluate import GoldProposal, score
from matcher.index import ProgramIndex, ProposalText
from matcher.tokenize import tokenize

DEV = Path(__file__).resolve().parents[1] / "tests" / "data" / "devset.jsonl"


def load_dev() -> list[GoldProposal]:
    items = []
    for line in DEV.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        items.append(
            GoldProposal(ProposalText(record["id"], record["title"], record["body"]), tuple(record["gold"]))
        )
    return items


def run(programs, items, **params):
    index = ProgramIndex(**params).fit(programs, [i.proposal for i in items])
    results = index.match([i.proposal for i in items], top_k=len(programs))
    from matcher.evaluate import Ranked

    rankings = [Ranked([m.program_id for m in r.matches], r.no_match) for r in results]
    top = [r.matches[0].score if r.matches else 0.0 for r in results]
    return score(items, rankings), top


def separation(items, top) -> float:
    """Share of (in-scope, out-of-scope) pairs where the in-scope top score is higher (AUC)."""
    inside = [t for i, t in zip(items, top, strict=True) if i.gold]
    outside = [t for i, t in zip(items, top, strict=True) if not i.gold]
    wins = sum((a > b) + 0.5 * (a == b) for a in inside for b in outside)
    return wins / (len(inside) * len(outside))


def objective(metrics, auc) -> tuple[float, float, float]:
    return (round(metrics.mrr, 4), round(metrics.hit_at_1, 4), round(auc, 4))


def main() -> None:
    programs = load_programs()
    items = load_dev()
    # IDF from programs and proposals: 30 short programs alone give a noisy IDF.
    base: dict = {"stop_words": (), "no_match_threshold": 0.0, "idf_from_proposals": True}

    print("## Grid (stop words: none)")
    best = None
    grid = itertools.product(
        [0.5, 1.0, 1.5], [0.5, 1.0], [0.5, 1.0], [0.0, 0.5], [False, True], [0.0, 0.2, 0.35, 0.5]
    )
    for name, purpose, activities, policy, compounds, kanji in grid:
        params = dict(
            base,
            field_weights={"name": name, "purpose": purpose, "activities": activities, "policy": policy},
            compounds=compounds,
            kanji_weight=kanji,
        )
        metrics, top = run(programs, items, **params)
        key = objective(metrics, separation(items, top))
        if best is None or key > best[0]:
            best = (key, params)
            print(f"  MRR {key[0]:.3f} hit@1 {key[1]:.3f} AUC {key[2]:.3f}  {params}")
    assert best is not None
    params = best[1]

    print("## Greedy stop words (candidates: the 40 lemmas in most programs)")
    df: Counter[str] = Counter()
    for p in programs:
        df.update(set(tokenize(" ".join(p.text_fields().values()))))
    candidates = [t for t, _ in df.most_common(40)]
    chosen: list[str] = []
    metrics, top = run(programs, items, **params)
    current = objective(metrics, separation(items, top))
    improved = True
    while improved:
        improved = False
        for term in candidates:
            if term in chosen:
                continue
            metrics, top = run(programs, items, **dict(params, stop_words=tuple(chosen + [term])))
            key = objective(metrics, separation(items, top))
            if key > current:
                current, best_term, improved = key, term, True
        if improved:
            chosen.append(best_term)
            print(f"  + {best_term}: MRR {current[0]:.3f} hit@1 {current[1]:.3f} AUC {current[2]:.3f}")
    params["stop_words"] = tuple(chosen)

    print("## Generic verbs as one block (they are rarely among the 40 candidates above)")
    generic = ("行う", "付く", "成る", "有る", "出来る", "居る")
    with_generic = dict(params, stop_words=tuple(chosen) + generic)
    for label, candidate in (("without", params), ("with", with_generic)):
        metrics, top = run(programs, items, **candidate)
        print(f"  {label}: MRR {metrics.mrr:.3f} hit@1 {metrics.hit_at_1:.3f} AUC {separation(items, top):.3f}")
    metrics, top = run(programs, items, **with_generic)
    if objective(metrics, separation(items, top)) >= current:
        params = with_generic

    print("## no_match threshold on the best top-1 score")
    metrics, top = run(programs, items, **params)
    inside = sorted(t for i, t in zip(items, top, strict=True) if i.gold)
    outside = sorted(t for i, t in zip(items, top, strict=True) if not i.gold)
    print(f"  in-scope top-1 scores: min {inside[0]:.3f}, 5th pct {inside[len(inside) // 20]:.3f}")
    print(f"  out-of-scope top-1 scores: max {outside[-1]:.3f}")
    for threshold in [x / 100 for x in range(4, 26, 2)]:
        flagged_out = sum(t < threshold for t in outside) / len(outside)
        flagged_in = sum(t < threshold for t in inside) / len(inside)
        print(f"  {threshold:.2f}: out-of-scope flagged {flagged_out:.3f}, in-scope flagged {flagged_in:.3f}")
    print("## no_match rules compared (AUC of in-scope vs out-of-scope, higher separates better)")
    index = ProgramIndex(**params)
    results = list(index.fit_match(programs, [i.proposal for i in items], top_k=len(programs)))
    firsts = [r.matches[0].score if r.matches else 0.0 for r in results]
    seconds = [r.matches[1].score if len(r.matches) > 1 else 0.0 for r in results]
    rules = {
        "top-1 score": firsts,
        "margin top-1 minus top-2": [a - b for a, b in zip(firsts, seconds, strict=True)],
        "ratio top-1 / top-2": [a / b if b else 10.0 for a, b in zip(firsts, seconds, strict=True)],
        "shared words with top-1 (kanji features aside)": [
            sum(t.kind != "kanji" for t in r.matches[0].terms) if r.matches else 0
            for r in results
        ],
    }
    for rule, values in rules.items():
        print(f"  {rule}: {separation(items, values):.3f}")
    print("## chosen")
    print(json.dumps(params, ensure_ascii=False))


if __name__ == "__main__":
    main()
