"""Choose the semantic layer's fusion weights, embedded program fields and
no_match rule on the dev split only (tests/data/devset.jsonl); the held-out
split is never read here.

    .venv/bin/python benchmarks/tune_semantic.py

Prints, for each kind (ordinary / paraphrase), hit@1 / hit@3 / MRR of every
field set × weight, then the no_match table that docs/quality.md reports,
then the same for the accepted-proposal (exemplar) term: every in-scope dev
proposal stands for an accepted pairing, and each proposal is ranked
without its own (leave one out).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from corpus import load_programs
from matcher.evaluate import GoldProposal, Ranked, score
from matcher.index import ProposalText
from matcher.semantic import (
    DEFAULT_EMBED_FIELDS,
    DEFAULT_SEMANTIC_WEIGHT,
    Exemplar,
    FusedIndex,
    exemplar_lift,
    fuse,
    proposal_text,
    shared_embedder,
)

DEV = Path(__file__).resolve().parents[1] / "tests" / "data" / "devset.jsonl"
FIELD_SETS = [
    ("name",),
    ("name", "purpose"),
    ("name", "purpose", "activities"),
    ("name", "purpose", "activities", "policy"),
    ("purpose", "activities"),
    # The shipped set: the four with the coordinator's キーワード (empty in the bundled catalogue).
    DEFAULT_EMBED_FIELDS,
]
SEMANTIC_WEIGHTS = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, None]  # None: e5 alone


def load_dev() -> list[GoldProposal]:
    items = []
    for line in DEV.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        items.append(GoldProposal(ProposalText(r["id"], r["title"], r["body"]), tuple(r["gold"]), r["kind"]))
    return items


def metrics_by_kind(items, ids, fused, no_match=None):
    out = {}
    for kind in ("ordinary", "paraphrase"):
        keep = [n for n, i in enumerate(items) if i.kind == kind]
        rankings = [
            Ranked([ids[j] for j in np.lexsort((np.arange(len(ids)), -fused[n]))],
                   None if no_match is None else bool(no_match[n]))
            for n in keep
        ]
        out[kind] = score([items[n] for n in keep], rankings)
    return out


def main() -> None:
    programs = load_programs()
    items = load_dev()
    proposals = [i.proposal for i in items]
    embedder = shared_embedder()
    ids = [p.id for p in programs]
    matrices = {}
    for fields in FIELD_SETS:
        index = FusedIndex(embedder=embedder, embed_fields=fields).fit(programs, proposals)
        _, lexical, semantic, _ = index.score_matrices(proposals)
        matrices[fields] = (lexical, semantic)

    print("## Ranking: fields × semantic weight (lexical weight 1); ordinary | paraphrase hit@1 hit@3 MRR")
    best = None
    for fields, weight in itertools.product(FIELD_SETS, SEMANTIC_WEIGHTS):
        lexical, semantic = matrices[fields]
        if weight is None:
            fused = fuse(lexical, semantic, lexical_weight=0.0, semantic_weight=1.0)
        else:
            fused = fuse(lexical, semantic, lexical_weight=1.0, semantic_weight=weight)
        m = metrics_by_kind(items, ids, fused)
        o, p = m["ordinary"], m["paraphrase"]
        label = "e5 alone" if weight is None else f"w={weight}"
        print(
            f"  {'+'.join(fields):<34}{label:<9}"
            f"{o.hit_at_1:.3f} {o.hit_at_3:.3f} {o.mrr:.3f} | {p.hit_at_1:.3f} {p.hit_at_3:.3f} {p.mrr:.3f}"
        )
        # Objective: mean MRR of the two kinds, then mean hit@1.
        key = (round((o.mrr + p.mrr) / 2, 4), round((o.hit_at_1 + p.hit_at_1) / 2, 4))
        if weight is not None and (best is None or key > best[0]):
            best = (key, fields, weight)
    assert best is not None
    print(f"  best by the objective: fields {best[1]}, semantic weight {best[2]} (objective {best[0]})")
    # The shipped defaults: all four fields at 1.5 raised both kinds over
    # TF-IDF alone; settings within ~0.01 of the objective's best are noise
    # on 33 paraphrase proposals. Everything below is measured on them.
    fields, weight = DEFAULT_EMBED_FIELDS, DEFAULT_SEMANTIC_WEIGHT
    print(f"  shipped: fields {fields}, semantic weight {weight}")

    lexical, semantic = matrices[fields]
    best_lex, best_sem = lexical.max(axis=1), semantic.max(axis=1)
    print("\n## no_match rule: AUC of in-scope vs out-of-scope (all / ordinary / paraphrase)")
    rules = {"best TF-IDF": best_lex, "best e5": best_sem}
    for factor in (1.0, 2.0, 3.0):
        rules[f"TF-IDF + {factor} × e5"] = best_lex + factor * best_sem
    for name, values in rules.items():
        print(f"  {name:<18}" + " ".join(f"{separation(items, values, k):.3f}" for k in (None, "ordinary", "paraphrase")))
    values = best_lex + 2.0 * best_sem
    print("\n## no_match when best TF-IDF + 2 × best e5 < t: ordinary OOS / in-scope flagged, paraphrase, all")
    for t in np.round(np.arange(1.78, 1.87, 0.01), 2):
        row = []
        for kind in ("ordinary", "paraphrase", None):
            keep = [n for n, i in enumerate(items) if kind is None or i.kind == kind]
            row += [np.mean([values[n] < t for n in keep if not items[n].gold]),
                    np.mean([values[n] < t for n in keep if items[n].gold])]
        print(f"  {t:.2f} " + " ".join(f"{v:.3f}" for v in row))

    tune_exemplars(programs, items, ids, fields, weight)


def tune_exemplars(programs, items, ids, fields, weight) -> None:
    proposals = [i.proposal for i in items]
    exemplars = [Exemplar(g, i.proposal) for i in items for g in i.gold]
    index = FusedIndex(embedder=shared_embedder(), embed_fields=fields, semantic_weight=weight)
    index.fit(programs, proposals, exemplars)
    _, lexical, semantic, _ = index.score_matrices(proposals)
    exemplar, _ = index.exemplar_matrix(proposals)
    base = fuse(lexical, semantic, lexical_weight=1.0, semantic_weight=weight)
    vectors = index.get_embedder().embed([proposal_text(p) for p in proposals], role="query").astype(np.float64)
    pairs = (vectors @ vectors.T)[np.triu_indices(len(proposals), 1)]
    print(f"\n## e5 cosine of two dev proposals (the exemplar reference): mean {pairs.mean():.4f}, std {pairs.std():.4f}")
    print("\n## Accepted proposals as exemplars (leave one out): exemplar weight; ordinary | paraphrase")
    # Rule: the best paraphrase MRR among weights that keep ordinary hit@1 at
    # least that of TF-IDF alone: the exemplars must not cost ordinary
    # proposals their first place (mean MRR alone would take 3.0, 0.909 there).
    floor = metrics_by_kind(items, ids, lexical)["ordinary"].hit_at_1
    best = None
    for w in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0):
        m = metrics_by_kind(items, ids, base + w * exemplar_lift(exemplar))
        o, p = m["ordinary"], m["paraphrase"]
        print(f"  w={w:<5}{o.hit_at_1:.3f} {o.hit_at_3:.3f} {o.mrr:.3f} | {p.hit_at_1:.3f} {p.hit_at_3:.3f} {p.mrr:.3f}")
        if o.hit_at_1 >= floor - 1e-9 and (best is None or p.mrr > best[0]):
            best = (p.mrr, w)
    assert best is not None
    print(f"  chosen: exemplar weight {best[1]} (ordinary hit@1 ≥ {floor:.3f}, TF-IDF alone's)")

    # no_match: flagged by the rule without exemplars AND base + c × nearest exemplar < t.
    found = ~np.isnan(exemplar)
    nearest = np.where(found.any(axis=1), np.nanmax(np.where(found, exemplar, -np.inf), axis=1), np.nan)
    both = lexical.max(axis=1) + 2.0 * semantic.max(axis=1)
    old = both < 1.82
    inside = np.array([bool(i.gold) for i in items])
    kinds = np.array([i.kind for i in items])
    print("\n## no_match with exemplars: factor c, threshold t (OOS flagged ≥ 0.85 on all dev, fewest in-scope flagged)")
    print("  c     t       all OOS  all in  | ordinary OOS in | paraphrase OOS in")
    for c in (1.0, 2.0, 3.0, 4.0, 6.0):
        values = both + c * nearest
        for t in np.unique(np.round(values, 2)):
            flag = old & (values < t)
            if flag[~inside].mean() >= 0.85:
                cells = [flag[(kinds == k) & s].mean() for k in ("ordinary", "paraphrase") for s in (~inside, inside)]
                print(f"  {c:<5} {t:<7.2f} {flag[~inside].mean():.3f}    {flag[inside].mean():.3f}   | "
                      + " ".join(f"{v:.3f}" for v in cells))
                break


def separation(items, values, kind=None) -> float:
    """AUC: share of (in-scope, out-of-scope) pairs where the in-scope value is higher."""
    keep = [n for n, i in enumerate(items) if kind is None or i.kind == kind]
    inside = [values[n] for n in keep if items[n].gold]
    outside = [values[n] for n in keep if not items[n].gold]
    return float(np.mean([(a > b) + 0.5 * (a == b) for a in inside for b in outside]))


if __name__ == "__main__":
    main()
