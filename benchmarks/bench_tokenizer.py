"""Tokenizer speed as a ratio against fugashi parsing the same text to a string.

    .venv/bin/python benchmarks/bench_tokenizer.py [--docs 3000] [--repeat 5]

Documents of 150-400 characters are built from the bundled corpus sentences
(the seeds' own prose). Each method runs on the same documents in this one
process, alternating, and the median of the repeats is reported: the machine is
noisy, so read the ratio rather than the absolute speed.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time

import fugashi

from corpus import load_programs
from matcher.tokenize import tokenize


def documents(n: int, seed: int = 0) -> list[str]:
    sentences = []
    for p in load_programs():
        for text in (p.purpose, p.activities, p.name, p.policy):
            sentences += [s for s in re.split(r"(?<=。)", text) if s.strip()]
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        target = rng.randint(150, 400)
        doc = ""
        while len(doc) < target:
            doc += rng.choice(sentences)
        docs.append(doc)
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    docs = documents(args.docs)
    chars = sum(map(len, docs))
    plain = fugashi.Tagger()
    tokenize("warm up")
    plain.parse("warm up")
    methods = {
        "fugashi Tagger.parse() to a string (baseline)": plain.parse,
        "kyodo tokenize() (NFKC, markers, numbers, lemmas, compounds)": tokenize,
    }
    timings: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeat):
        for name, method in methods.items():
            start = time.perf_counter()
            for doc in docs:
                method(doc)
            timings[name].append(time.perf_counter() - start)
    base = statistics.median(next(iter(timings.values())))
    print(f"{len(docs)} documents, {chars} characters, median of {args.repeat} runs")
    print("| method | Mchar/s | time relative to baseline |")
    print("|---|---|---|")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"| {name} | {chars / median / 1e6:.2f} | {median / base:.2f}× |")


if __name__ == "__main__":
    main()
