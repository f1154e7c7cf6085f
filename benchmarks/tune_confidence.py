"""Choose the confidence rule (matcher/confidence.py) and the no_match
thresholds on the dev split only (tests/data/devset.jsonl); the held-out
splits are never read here.

    .venv/bin/python benchmarks/tune_confidence.py

For each mode (lexical, semantic) it prints:

1. the no_match threshold (低): the highest threshold on the best TF-IDF
   cosine (lexical) or on best TF-IDF + 2 × best e5 (semantic) that puts at
   most 15 % of the in-scope dev proposals in 低 — the bar's limit; the e5
   factor 2 stays as chosen in benchmarks/tune_semantic.py (factors 1–8 were
   within 0.01 AUC of each other);
2. the logistic model of "the first suggestion is right" over the signals of
   matcher.confidence.signals (scikit-learn, C=10), fitted on every dev
   proposal outside 低, and the lowest probability at which the first
   suggestion was right ≥ 97 % of the time with ≤ 3 % of the out-of-scope
   proposals (a margin under the bar's 95 % / 5 %);
3. the ambiguity margin: among in-scope dev proposals whose first two
   programs belong to different departments, the margin that catches the
   most wrong first suggestions while flagging at most 10 % of the right ones;
4. the reliability table docs/quality.md reports.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from corpus import load_programs
from matcher.confidence import Calibration, is_ambiguous, level, margin, signals
from matcher.index import ProgramIndex, ProposalText

DEV = Path(__file__).resolve().parents[1] / "tests" / "data" / "devset.jsonl"
CAP_IN_SCOPE_LOW = 0.15
HIGH_PRECISION, HIGH_MAX_OOS = 0.97, 0.03
# An ambiguity notice on at most one in ten right first suggestions: more
# would teach the coordinator to ignore it.
AMBIGUOUS_MAX_RIGHT = 0.10


def load(path: Path) -> list[tuple[ProposalText, tuple[str, ...]]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(ProposalText(r["id"], r["title"], r["body"]), tuple(r["gold"])) for r in rows]


def no_match_threshold(best: np.ndarray, in_scope: np.ndarray) -> float:
    values = np.unique(best)
    cuts = (values[1:] + values[:-1]) / 2
    allowed = [t for t in cuts if (best[in_scope] < t).mean() <= CAP_IN_SCOPE_LOW]
    return float(max(allowed))


def high_from(p: np.ndarray, right: np.ndarray, in_scope: np.ndarray, eligible: np.ndarray) -> float:
    best, best_cover = 1.0, -1.0
    for t in np.unique(p[eligible]):
        high = eligible & (p >= t)
        if not high.any():
            continue
        precision, oos = right[high].mean(), high[~in_scope].mean()
        cover = high[in_scope].mean()
        if precision >= HIGH_PRECISION and oos <= HIGH_MAX_OOS and cover > best_cover:
            best, best_cover = float(t), cover
    return best


def ambiguity_margin(margins: np.ndarray, right: np.ndarray, candidates: np.ndarray) -> float:
    best, best_j = 0.0, -1.0
    for t in np.unique(margins[candidates]):
        flagged = candidates & (margins < t + 1e-9)
        wrong = candidates & ~right
        ok = candidates & right
        caught = flagged[wrong].sum() / max(wrong.sum(), 1)
        if flagged[ok].sum() / max(ok.sum(), 1) <= AMBIGUOUS_MAX_RIGHT and caught > best_j:
            j = caught
            best, best_j = float(t) + 1e-4, j
    return best


def index_for(mode: str, threshold: float | None = None):
    if mode == "lexical":
        return ProgramIndex() if threshold is None else ProgramIndex(no_match_threshold=threshold)
    from matcher.semantic import FusedIndex, shared_embedder

    if threshold is None:
        return FusedIndex(embedder=shared_embedder())
    return FusedIndex(embedder=shared_embedder(), no_match_threshold=threshold)


def calibrate(mode: str, programs, items) -> tuple[float, Calibration]:
    """The no_match threshold and the calibration of ``mode``, from ``items``."""
    threshold, calibration, _ = _calibrate(mode, programs, items)
    return threshold, calibration


def _calibrate(mode: str, programs, items):
    proposals = [p for p, _ in items]
    in_scope = np.array([bool(g) for _, g in items])
    results = list(index_for(mode).fit_match(programs, proposals, top_k=len(programs)))
    best = np.array([(r.best_lexical or 0) + 2.0 * (r.best_semantic or 0) for r in results])
    if mode == "lexical":
        best = np.array([r.best_lexical or 0 for r in results])
    threshold = no_match_threshold(best, in_scope)
    results = list(index_for(mode, threshold).fit_match(programs, proposals, top_k=len(programs)))
    right = np.array([bool(g) and bool(r.matches) and r.matches[0].program_id in g for (_, g), r in zip(items, results, strict=True)])
    low = np.array([r.no_match for r in results])
    x = np.array([signals(r) for r in results])
    model = LogisticRegression(C=10.0, max_iter=1000).fit(x[~low], right[~low])
    p = model.predict_proba(x)[:, 1]
    margins = np.array([margin(r) for r in results])
    differ = np.array([len(r.matches) > 1 and r.matches[0].department != r.matches[1].department for r in results])
    calibration = Calibration(
        intercept=round(float(model.intercept_[0]), 4),
        weights=tuple(round(float(w), 4) for w in model.coef_[0]),
        high_from=round(high_from(p, right, in_scope, ~low), 4),
        ambiguity_margin=round(ambiguity_margin(margins, right, differ & in_scope), 4),
    )
    return round(threshold, 4), calibration, results


def tune(mode: str, programs, items) -> None:
    threshold, calibration, results = _calibrate(mode, programs, items)
    print(f"## {mode}\nno_match threshold: {threshold:.4f}\n{calibration}")
    report(results, items, calibration)


def report(results, items, calibration: Calibration) -> None:
    levels = [level(r, calibration) for r in results]
    in_scope = [bool(g) for _, g in items]
    n_in, n_out = sum(in_scope), len(in_scope) - sum(in_scope)
    print("level | in-scope in it | first right | out-of-scope in it")
    for name in ("high", "medium", "low"):
        inside = [r for r, lv, (_, g) in zip(results, levels, items, strict=True) if lv == name and g]
        right = [r for r, (_, g) in zip(results, items, strict=True) if r in inside and r.matches and r.matches[0].program_id in g]
        outside = sum(1 for lv, s in zip(levels, in_scope, strict=True) if lv == name and not s)
        share = len(right) / len(inside) if inside else float("nan")
        print(f"{name} | {len(inside) / n_in:.2f} | {share:.2f} | {outside / n_out:.2f}")
    ambiguous = [is_ambiguous(replace(r), calibration) for r in results]
    print(f"ambiguous: {sum(ambiguous)} of {len(results)}")


def main() -> None:
    programs = load_programs()
    items = load(DEV)
    for mode in ("lexical", "semantic"):
        tune(mode, programs, items)


if __name__ == "__main__":
    main()
