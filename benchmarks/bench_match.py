"""``kyodo match --mode lexical`` against a plain pipeline, whole process, same run.

    .venv/bin/python benchmarks/bench_match.py [--programs 500] [--proposals 5000] [--repeat 3]
    .venv/bin/python benchmarks/bench_match.py --small        # CI: 40 × 300, one run each
    .venv/bin/python benchmarks/bench_match.py --matcher-cli  # also the command without the entry point
    .venv/bin/python benchmarks/bench_match.py --kyodo-args "--related 0"  # options passed to kyodo match

Generates the catalogue and proposals with benchmarks/generate.py (seed 0), then
runs, as subprocesses and alternating, ``--repeat`` times each:

* ``kyodo match --mode lexical --format jsonl`` on the generated files, stdout
  to a file (reading, fitting, matching, explaining and writing the JSON);
* the plain pipeline (``bench_match.py plain``, this file): fugashi lemmatises
  every text reading ``word.feature.lemma`` per token, scikit-learn's
  ``TfidfVectorizer`` (defaults) fits on the programs' lemmas, the proposals
  are transformed, the cosine top-k is taken a chunk of 1,000 proposals at a
  time (scipy product + argpartition) and one JSON line per proposal is written
  (program ids and scores, no explanation).

With ``--matcher-cli``, also ``matcher.cli.match_command`` called from a bare
``python -c``: the same work without the imports of the ``kyodo`` entry point
(``web/``, ``office/``, ``models/``), to tell that cost apart.

Each figure comes from a fresh one-shot wrapper process
(``getrusage(RUSAGE_CHILDREN)``): wall time, CPU time (user + system), peak
RSS. Prints a Markdown table of medians, the ratio kyodo / plain, and the size
of each output. The bar (issue 14): kyodo no slower than the plain pipeline.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOP_K = 5

# Runs argv as a child, stdout to a file, and prints wall time, CPU time and
# peak RSS (KiB on Linux): a fresh wrapper per measurement.
_MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
with open(sys.argv[1], "wb") as out:
    code = subprocess.call(sys.argv[2:], stdout=out)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_kib": usage.ru_maxrss}))
"""


def plain_pipeline(programs_path: Path, proposals_path: Path, top_k: int = TOP_K) -> None:
    """The plain pipeline, printing one JSON line per proposal to stdout."""
    import fugashi
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    tagger = fugashi.Tagger()

    def lemmas(text: str) -> list[str]:
        return [word.feature.lemma or word.surface for word in tagger(text)]

    with programs_path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    ids = [row["id"] for row in rows]
    program_texts = ["\n".join((row["事業名"], row["目的"], row["取り組み内容"], row["施策名"])) for row in rows]
    proposals = [json.loads(line) for line in proposals_path.read_text(encoding="utf-8").splitlines() if line]
    vectorizer = TfidfVectorizer(analyzer=lemmas)
    program_matrix = vectorizer.fit_transform(program_texts)
    queries = vectorizer.transform([p["title"] + "\n" + p["body"] for p in proposals])
    k = min(top_k, len(ids))
    out = sys.stdout
    for start in range(0, len(proposals), 1000):
        scores = (queries[start : start + 1000] @ program_matrix.T).toarray()
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for row, candidates, proposal in zip(scores, top, proposals[start : start + 1000], strict=True):
            ordered = candidates[np.argsort(-row[candidates], kind="stable")]
            matches = [{"program_id": ids[j], "score": round(float(row[j]), 4)} for j in ordered.tolist()]
            out.write(json.dumps({"proposal_id": proposal["id"], "matches": matches}, ensure_ascii=False) + "\n")


def _measure(argv: list[str], out: Path) -> dict[str, float]:
    line = subprocess.check_output([sys.executable, "-c", _MEASURE, str(out), *argv], cwd=ROOT, text=True)
    result = json.loads(line)
    if result["code"] != 0:
        raise SystemExit(f"{argv[0]} failed with exit code {result['code']}")
    return result


def _commands(programs: Path, proposals: Path, matcher_cli: bool, extra: list[str]) -> dict[str, list[str]]:
    options = ["--mode", "lexical", "--format", "jsonl", "--top-k", str(TOP_K),
               "--programs", str(programs), "--proposals", str(proposals), *extra]
    commands = {
        "kyodo match --mode lexical": [str(BIN / "kyodo"), "match", *options],
        "plain pipeline (word.feature, TfidfVectorizer)":
            [sys.executable, str(Path(__file__).resolve()), "plain", str(programs), str(proposals)],
    }
    if matcher_cli:
        # The same command without the `kyodo` entry point's imports (web/, office/, models/).
        commands["matcher.cli match_command alone"] = [
            sys.executable, "-c", "import sys; from matcher.cli import match_command; match_command(sys.argv[1:])",
            *options,
        ]
    return commands


def _table(timings: dict[str, list[dict[str, float]]], sizes: dict[str, int]) -> list[str]:
    def median(name: str, key: str) -> float:
        return statistics.median(t[key] for t in timings[name])

    names = list(timings)
    kyodo, plain = names[:2]
    lines = [
        "| command | wall time (min–max) | CPU time | peak RSS | output | wall / plain | CPU / plain |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        walls = [t["wall"] for t in timings[name]]
        lines.append(
            f"| {name} | {median(name, 'wall'):.1f} s ({min(walls):.1f}–{max(walls):.1f}) "
            f"| {median(name, 'cpu'):.1f} s | {median(name, 'rss_kib') / 1024:.0f} MB "
            f"| {sizes[name] / 1e6:.1f} MB | {median(name, 'wall') / median(plain, 'wall'):.2f}× "
            f"| {median(name, 'cpu') / median(plain, 'cpu'):.2f}× |"
        )
    lines.append(f"\nratio kyodo / plain: wall {median(kyodo, 'wall') / median(plain, 'wall'):.2f}×, "
                 f"CPU {median(kyodo, 'cpu') / median(plain, 'cpu'):.2f}×")
    return lines


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "plain":
        plain_pipeline(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=500)
    parser.add_argument("--proposals", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="40 programs × 300 proposals, one run each (CI)")
    parser.add_argument("--keep", type=Path, help="keep the data and outputs in this folder")
    parser.add_argument("--kyodo-args", default="", help='more options of kyodo match, e.g. "--related 0"')
    parser.add_argument("--matcher-cli", action="store_true",
                        help="also time matcher.cli's match command called without the kyodo entry point")
    args = parser.parse_args()
    if args.small:
        args.programs, args.proposals, args.repeat = 40, 300, 1
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import generate

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        programs, proposals = generate(args.programs, args.proposals, folder)
        commands = _commands(programs, proposals, args.matcher_cli, shlex.split(args.kyodo_args))
        timings: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):
            for i, (name, argv) in enumerate(commands.items()):
                out = folder / f"out-{i}.jsonl"
                timings[name].append(_measure(argv, out))
                sizes[name] = out.stat().st_size
        print(f"{args.proposals} proposals × {args.programs} programs, top-{TOP_K}, "
              f"median of {args.repeat} run(s), alternating; kyodo options: {args.kyodo_args or '(defaults)'}")
        print("\n".join(_table(timings, sizes)))


if __name__ == "__main__":
    main()
