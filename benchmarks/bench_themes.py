"""Themes for 10,000 proposals against the nightly rematch of the same proposals.

    .venv/bin/python benchmarks/bench_themes.py [--programs 2000] [--proposals 10000] [--repeat 3]
    .venv/bin/python benchmarks/bench_themes.py --nightly [--repeat 3]   # the bar: themes inside the nightly run

``--nightly``: ``kyodo rematch`` (lexical, one process) as the nightly job
runs it, against the same command with the themes step left out, and with
both issue-15 steps (related proposals, themes) left out; each variant is a
child process of this script that replaces the left-out steps of
``office.rematch`` by no-ops before running the command, alternating. The
themes' share is ``full / without themes``.

Generates the catalogue and proposals with benchmarks/generate.py, loads them
into a fresh SQLite database as benchmarks/bench_rematch.py does, then runs
``kyodo rematch`` (lexical, one process) and ``kyodo themes --mode lexical``
on the same proposals as subprocesses, alternating, ``--repeat`` times each
(wall, CPU and peak RSS measured as bench_rematch.py measures them). Then, in
this process, where the time of themes goes (tokenizing, TF-IDF rows, pair
scores, clustering, labels), which is also what ``kyodo match`` now spends on
its ``related`` key (all but the clustering and labels), and the pair scores
and clustering of semantic mode with random unit vectors standing in for the
e5 vectors the nightly run has in its cache (the cost of the e5 product
depends on the shape only; the clustering's on the data).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_rematch import BIN, Sample, kyodo_env, load_database, measure  # noqa: E402
from generate import generate  # noqa: E402

from matcher.index import ProgramIndex, ProposalText  # noqa: E402
from matcher.related import build_space, pair_graph, related_lists  # noqa: E402
from matcher.themes import themes_in  # noqa: E402


def lexical_instance(work: Path, data: tuple[Path, Path]) -> dict[str, str]:
    """A fresh SQLite instance in ``work`` holding the generated data; the
    environment of a lexical ``kyodo`` on it."""
    instance = work / "instance"
    instance.mkdir()
    database_url = f"sqlite:///{work / 'bench.sqlite3'}"
    load_database(database_url, instance, *data)
    env = kyodo_env(instance, database_url)
    env["KYODO_MATCH_MODE"] = "lexical"
    return env


def subprocess_rows(work: Path, data: tuple[Path, Path], repeat: int) -> list[str]:
    env = lexical_instance(work, data)
    proposals_jsonl = data[1]
    commands = {
        "rematch": [str(BIN / "kyodo"), "rematch", "--jobs", "1"],
        "themes": [str(BIN / "kyodo"), "themes", "--mode", "lexical", "--proposals", str(proposals_jsonl)],
    }
    samples: dict[str, list[Sample]] = {name: [] for name in commands}
    for i in range(repeat):
        for name, argv in commands.items():
            sample = measure(argv, env)
            samples[name].append(sample)
            print(f"run {i + 1}: {name} {sample.wall:.1f} s, CPU {sample.cpu:.1f} s, {sample.rss_mb:.0f} MB", file=sys.stderr)
    wall = {k: statistics.median(s.wall for s in v) for k, v in samples.items()}
    cpu = {k: statistics.median(s.cpu for s in v) for k, v in samples.items()}
    rss = {k: statistics.median(s.rss_mb for s in v) for k, v in samples.items()}
    spread = {k: f"{min(s.wall for s in v):.1f}–{max(s.wall for s in v):.1f}" for k, v in samples.items()}
    return [
        "| command | wall time (min–max) | CPU time | peak RSS | wall / rematch | CPU / rematch |",
        "|---|---|---|---|---|---|",
        *(
            f"| `kyodo {name}` | {wall[name]:.1f} s ({spread[name]}) | {cpu[name]:.1f} s | {rss[name]:.0f} MB | "
            f"{wall[name] / wall['rematch']:.2f}× | {cpu[name] / cpu['rematch']:.2f}× |"
            for name in commands
        ),
    ]


# What each --nightly variant leaves out of office.rematch.rematch.
VARIANTS = {"full": (), "without themes": ("regroup_themes",), "without related or themes": ("regroup_themes", "store_for_run")}


def nightly_child(variant: str) -> None:
    """Run ``kyodo rematch --jobs 1`` with the variant's steps as no-ops (in this child process)."""
    import office.rematch
    from web.cli import cli

    for name in VARIANTS[variant]:
        setattr(office.rematch, name, lambda **_kwargs: None)
    cli(["rematch", "--jobs", "1"])


def nightly_rows(work: Path, data: tuple[Path, Path], repeat: int) -> list[str]:
    env = lexical_instance(work, data)
    samples: dict[str, list[Sample]] = {name: [] for name in VARIANTS}
    for i in range(repeat):
        for name in VARIANTS:
            sample = measure([sys.executable, __file__, "--child", name], env)
            samples[name].append(sample)
            print(f"run {i + 1}: {name} {sample.wall:.1f} s, CPU {sample.cpu:.1f} s", file=sys.stderr)
    wall = {k: statistics.median(x.wall for x in v) for k, v in samples.items()}
    cpu = {k: statistics.median(x.cpu for x in v) for k, v in samples.items()}
    base = "without themes"
    return [
        "| `kyodo rematch` | wall time | CPU time | peak RSS | wall / without themes | CPU / without themes |",
        "|---|---|---|---|---|---|",
        *(f"| {name} | {wall[name]:.1f} s | {cpu[name]:.1f} s | "
          f"{statistics.median(x.rss_mb for x in samples[name]):.0f} MB | "
          f"{wall[name] / wall[base]:.2f}× | {cpu[name] / cpu[base]:.2f}× |" for name in VARIANTS),
    ]


def timed(steps: dict[str, tuple[float, float]], name: str, started: tuple[float, float]) -> tuple[float, float]:
    """Record the wall and CPU seconds (this process's threads included) since ``started``."""
    now = (time.perf_counter(), time.process_time())
    steps[name] = (now[0] - started[0], now[1] - started[1])
    return now


def breakdown(proposals: list[ProposalText]) -> list[str]:
    """Where one lexical themes run's time goes, then semantic pair scores with stand-in vectors."""
    steps: dict[str, tuple[float, float]] = {}
    started = (time.perf_counter(), time.process_time())
    counted = ProgramIndex()._counter().proposal_counts_with_forms(proposals)
    started = timed(steps, "tokenizing (what the rematch also does)", started)
    space = build_space(proposals, mode="lexical", embedder=None, counted=counted)
    started = timed(steps, "TF-IDF rows", started)
    graph = pair_graph(space)
    started = timed(steps, "pair scores (TF-IDF product, z-scores, best pairs)", started)
    found = themes_in(space, graph=graph)
    started = timed(steps, "clustering and labels", started)
    related_lists(space, graph=graph, with_terms=False)
    started = timed(steps, "related lists (kyodo match; not part of themes)", started)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(space.n, 384)).astype(np.float32)
    semantic = replace(space, vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True), mode="semantic")
    semantic_graph = pair_graph(semantic)
    started = timed(steps, "semantic: pair scores, stand-in e5 vectors", started)
    themes_in(semantic, graph=semantic_graph)
    timed(steps, "semantic: clustering and labels, stand-in e5 vectors", started)
    sizes = sorted((len(t.proposal_ids) for t in found), reverse=True)
    lines = [f"lexical: {len(found)} themes, largest {sizes[:5]}, {len(graph.a)} pairs kept",
             "| step | wall | CPU |", "|---|---|---|"]
    lines += [f"| {name} | {wall:.2f} s | {cpu:.2f} s |" for name, (wall, cpu) in steps.items()]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--proposals", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-subprocess", action="store_true", help="Only the in-process breakdown.")
    parser.add_argument("--nightly", action="store_true", help="The nightly rematch with and without its themes step.")
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return nightly_child(args.child)
    with tempfile.TemporaryDirectory(prefix="kyodo-themes-bench-") as tmp:
        work = Path(tmp)
        data = generate(args.programs, args.proposals, work / "data")
        if args.nightly:
            print("\n".join(nightly_rows(work, data, args.repeat)))
            return None
        lines = [] if args.no_subprocess else subprocess_rows(work, data, args.repeat)
        records = [json.loads(line) for line in data[1].read_text(encoding="utf-8").splitlines()]
        lines += breakdown([ProposalText(r["id"], r["title"], r["body"]) for r in records])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
