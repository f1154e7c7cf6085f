"""Choose the themes' join threshold on the dev split only, and measure themes
and related proposals against two baselines in the same run; calibrate the
likely-duplicate rule on the pairs written for testing.

    .venv/bin/python benchmarks/tune_themes.py                 # dev: the curve and the choice
    .venv/bin/python benchmarks/tune_themes.py --heldout       # held-out, once, thresholds fixed
    .venv/bin/python benchmarks/tune_themes.py --heldout-themes  # heldout_themes.jsonl (3 per program), once
    .venv/bin/python benchmarks/tune_themes.py --duplicates    # tests/data/duplicates.jsonl

Measured on the in-scope proposals of a split (gold programs known), grouped
by their gold programs (a proposal whose gold is two programs is in the group
of that pair):

* ARI: sklearn's adjusted Rand index of the themes against those groups;
  "ARI, all" clusters the out-of-scope proposals too and scores the in-scope ones;
* nearest same program: share of proposals whose most related proposal
  shares a gold program with it.

Baselines, each with its own threshold chosen on dev the same way: average
linkage on the cosine of character-bigram TF-IDF (scikit-learn's
TfidfVectorizer(analyzer="char", ngram_range=(2, 2))) and on the plain e5
cosine (the query vectors of the semantic layer), nearest by that cosine.
Without --heldout / --heldout-themes the held-out files are never read.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score

from matcher.duplicates import DUPLICATE_LIKENESS_WITH_SCORE, likely_duplicate, text_likeness
from matcher.index import ProposalText
from matcher.related import (
    PairGraph,
    build_space,
    pair_graph,
    related_lists,
)
from matcher.text import proposal_text
from matcher.themes import DEFAULT_THEME_THRESHOLD, clusters

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
DEV_FILES = ("devset.jsonl", "dev_themes.jsonl")
ENGINE_GRID = np.round(np.arange(0.5, 4.01, 0.125), 3)
COSINE_GRID = np.round(np.arange(0.02, 0.98, 0.0025), 4)


def load(names: Sequence[str]) -> list[dict]:
    return [json.loads(line) for name in names for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def proposals(items: Sequence[dict]) -> list[ProposalText]:
    return [ProposalText(r["id"], r["title"], r["body"]) for r in items]


def groups(items: Sequence[dict]) -> list[str]:
    return ["+".join(sorted(r["gold"])) for r in items]


def labels_of(found: list[list[int]], n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    for number, members in enumerate(found):
        out[members] = number
    return out


def ari(graph: PairGraph, threshold: float, items: Sequence[dict], keep: Sequence[int]) -> tuple[float, int]:
    """ARI of the themes at ``threshold`` on the rows ``keep`` (the in-scope ones), and their number."""
    labels = labels_of(clusters(graph, threshold), graph.n)[list(keep)]
    return adjusted_rand_score(groups([items[i] for i in keep]), labels), len(set(labels.tolist()))


def dense_graph(similarity: np.ndarray) -> PairGraph:
    """Every pair of a similarity matrix, for the baselines."""
    a, b = np.triu_indices(len(similarity), 1)
    return PairGraph(len(similarity), a, b, similarity[a, b], similarity[a, b], None)


def nearest_share(items: Sequence[dict], nearest: Sequence[int | None]) -> float:
    gold = [set(r["gold"]) for r in items]
    return float(np.mean([j is not None and bool(gold[i] & gold[j]) for i, j in enumerate(nearest)]))


def with_partner(items: Sequence[dict]) -> int:
    """Proposals that have another proposal of the split sharing a gold
    program: the most that "nearest same program" can count."""
    gold = [set(r["gold"]) for r in items]
    return sum(any(gold[i] & gold[j] for j in range(len(items)) if j != i) for i in range(len(items)))


def engine(items: Sequence[dict], mode: str, embedder: object) -> tuple[PairGraph, list[int | None]]:
    space = build_space(proposals(items), mode=mode, embedder=embedder)  # type: ignore[arg-type]
    graph = pair_graph(space)
    index = {r["id"]: i for i, r in enumerate(items)}
    nearest = [index[found[0].proposal_id] if found else None for found in related_lists(space, k=1, graph=graph, with_terms=False)]
    return graph, nearest


def cosine_method(similarity: np.ndarray) -> tuple[PairGraph, list[int | None]]:
    masked = similarity.copy()
    np.fill_diagonal(masked, -np.inf)
    return dense_graph(similarity), masked.argmax(axis=1).tolist()


def char_bigram(items: Sequence[dict], _embedder: object) -> tuple[PairGraph, list[int | None]]:
    matrix = TfidfVectorizer(analyzer="char", ngram_range=(2, 2)).fit_transform([proposal_text(p) for p in proposals(items)])
    return cosine_method((matrix @ matrix.T).toarray())


def plain_e5(items: Sequence[dict], embedder: object) -> tuple[PairGraph, list[int | None]]:
    vectors = embedder.embed([proposal_text(p) for p in proposals(items)], role="query").astype(np.float64)  # type: ignore[attr-defined]
    return cosine_method(vectors @ vectors.T)


def methods(embedder: object) -> dict[str, tuple[Callable, np.ndarray, float | None]]:
    """name → (graph maker, threshold grid, fixed threshold or None = choose on dev)."""
    out: dict[str, tuple[Callable, np.ndarray, float | None]] = {
        "kyodo-match (lexical)": (lambda items, e: engine(items, "lexical", None), ENGINE_GRID, DEFAULT_THEME_THRESHOLD["lexical"]),
        "char-bigram TF-IDF": (char_bigram, COSINE_GRID, None),
    }
    if embedder is not None:
        out["kyodo-match + e5 (semantic)"] = (lambda items, e: engine(items, "semantic", e), ENGINE_GRID, DEFAULT_THEME_THRESHOLD["semantic"])
        out["plain e5"] = (plain_e5, COSINE_GRID, None)
    return out


def in_scope(items: Sequence[dict]) -> list[dict]:
    return [r for r in items if r["gold"]]


def curve(graph: PairGraph, items: Sequence[dict], grid: np.ndarray) -> list[tuple[float, float, int]]:
    keep = list(range(len(items)))
    return [(float(t), *ari(graph, float(t), items, keep)) for t in grid]


def choose(points: list[tuple[float, float, int]]) -> float:
    """The threshold of the best ARI; on a tie, the middle one of the tied run."""
    best = max(p[1] for p in points)
    tied = [p[0] for p in points if p[1] >= best - 1e-9]
    return tied[len(tied) // 2]


def run_split(name: str, files: Sequence[str], chosen: dict[str, float], embedder: object) -> None:
    every = load(files)
    items = in_scope(every)
    keep = [i for i, r in enumerate(every) if r["gold"]]
    print(f"\n## {name}: {len(items)} in-scope proposals, {len(set(groups(items)))} gold groups ({len(every)} with out-of-scope)")
    partners = with_partner(items)
    print(f"{partners} of them have another proposal with a gold program in common")
    print("| method | threshold | ARI | themes | ARI, all | nearest same program | of those with a partner |")
    print("|---|---|---|---|---|---|---|")
    for method, (make, _grid, _fixed) in methods(embedder).items():
        graph, nearest = make(items, embedder)
        score, count = ari(graph, chosen[method], items, range(len(items)))
        all_graph, _ = make(every, embedder)
        score_all, _ = ari(all_graph, chosen[method], every, keep)
        share = nearest_share(items, nearest)
        print(f"| {method} | {chosen[method]} | {score:.3f} | {count} | {score_all:.3f} | {share:.3f} "
              f"| {share * len(items) / partners:.3f} |")


def tune(embedder: object) -> dict[str, float]:
    """Each method's threshold: the best mean ARI over the two dev files
    (devset.jsonl and dev_themes.jsonl, each clustered on its own; in-scope
    proposals)."""
    files = [in_scope(load([name])) for name in DEV_FILES]
    chosen = {}
    for method, (make, grid, fixed) in methods(embedder).items():
        curves = [curve(make(items, embedder)[0], items, grid) for items in files]
        points = [(t, float(np.mean([c[k][1] for c in curves])), curves[0][k][2]) for k, (t, _, _) in enumerate(curves[0])]
        chosen[method] = fixed if fixed is not None else choose(points)
        print(f"\n### {method}: threshold → mean ARI of the two dev files (devset / dev_themes); "
              f"best at {choose(points)}, used {chosen[method]}")
        best = max(a for _, a, _ in points)
        print("  ".join(f"{t:g}→{a:.3f} ({c0[1]:.3f} / {c1[1]:.3f})"
                        for (t, a, _), c0, c1 in zip(points, *curves, strict=True) if a >= best - 0.1))
    return chosen


def lexical_reference() -> None:
    space = build_space(proposals(load(["devset.jsonl"])), mode="lexical", embedder=None)
    cosine = (space.lexical @ space.lexical.T).toarray()
    a, b = np.triu_indices(len(cosine), 1)
    print(f"TF-IDF cosine of two dev proposals (every pair): mean {cosine[a, b].mean():.4f}, std {cosine[a, b].std():.4f}")


def duplicates() -> None:
    """Features of each written pair, the rule's thresholds from the calibration half, figures on both halves."""
    pairs = load(["duplicates.jsonl"])
    texts = [ProposalText(f"{r['id']}-{side}", r[side]["title"], r[side]["body"]) for r in pairs for side in ("a", "b")]
    space = build_space(texts, mode="lexical", embedder=None)
    rows = []
    for k, r in enumerate(pairs):
        cosine = float(space.lexical[2 * k].multiply(space.lexical[2 * k + 1]).sum())
        likeness = text_likeness(proposal_text(texts[2 * k]), proposal_text(texts[2 * k + 1]))
        rows.append((r, likeness, cosine))
    calibration = [x for x in rows if x[0]["split"] == "calibration"]
    for feature, position in (("likeness", 1), ("TF-IDF cosine", 2)):
        top_no = max(x[position] for x in calibration if not x[0]["duplicate"])
        low_yes = min(x[position] for x in calibration if x[0]["duplicate"])
        print(f"calibration {feature}: highest of a non-duplicate {top_no:.3f}, lowest of a duplicate {low_yes:.3f}, "
              f"midpoint {(top_no + low_yes) / 2:.3f}")
    print(f"(the likeness floor with a score, {DUPLICATE_LIKENESS_WITH_SCORE}, is set, not tuned)")
    print("| split | rule | precision | recall | pairs (duplicates) |\n|---|---|---|---|---|")
    for split in ("calibration", "check", None):
        chosen = [x for x in rows if split is None or x[0]["split"] == split]
        for rule, judge in (("likeness alone", lambda x: likely_duplicate(*_texts(texts, x), None)),
                            ("likeness and score", lambda x: likely_duplicate(*_texts(texts, x), x[2]))):
            said = [judge(x) for x in chosen]
            truth = [x[0]["duplicate"] for x in chosen]
            hits = sum(s and t for s, t in zip(said, truth, strict=True))
            precision = hits / sum(said) if any(said) else float("nan")
            print(f"| {split or 'both'} | {rule} | {precision:.3f} | {hits / sum(truth):.3f} | {len(chosen)} ({sum(truth)}) |")
    for r, likeness, cosine in rows:
        print(f"  {r['id']} {r['kind']:<10} {r['split']:<11} likeness {likeness:.3f} cosine {cosine:.3f}")


def _texts(texts: list[ProposalText], row: tuple) -> tuple[str, str]:
    k = int(row[0]["id"].split("-")[1]) - 1
    return proposal_text(texts[2 * k]), proposal_text(texts[2 * k + 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", action="store_true", help="also evaluate held-out, once, with the thresholds fixed on dev")
    parser.add_argument("--heldout-themes", action="store_true",
                        help="also evaluate tests/data/heldout_themes.jsonl (every program three times), once")
    parser.add_argument("--duplicates", action="store_true", help="calibrate and measure the likely-duplicate rule")
    parser.add_argument("--mode", choices=["lexical", "semantic"], default="semantic", help="lexical: skip the e5 methods")
    args = parser.parse_args()
    if args.duplicates:
        duplicates()
        return
    embedder = None
    if args.mode == "semantic":
        from matcher.semantic import shared_embedder

        embedder = shared_embedder()
    lexical_reference()
    chosen = tune(embedder)
    run_split("dev", ["devset.jsonl"], chosen, embedder)
    run_split("dev themes (dev_themes.jsonl)",
              ["dev_themes.jsonl"], chosen, embedder)
    if args.heldout:
        run_split("held-out", ["heldout.jsonl", "heldout_paraphrase.jsonl"], chosen, embedder)
    if args.heldout_themes:
        run_split("held-out themes", ["heldout_themes.jsonl"], chosen, embedder)


if __name__ == "__main__":
    main()
