"""Synthetic but realistic catalogues and proposals for the scale benchmarks.

    .venv/bin/python benchmarks/generate.py --programs 2000 --proposals 10000 --out /tmp/kyodo-scale

Writes programs.csv (the plan's Japanese headers) and proposals.jsonl. Every
sentence comes from the bundled corpus or the test proposals (tests/data,
written for testing); they are recombined at random with a fixed seed, so
the vocabulary, sentence lengths and term distribution are those of real
administrative prose and NPO proposals, at any size.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from pathlib import Path

from corpus import load_programs

ROOT = Path(__file__).resolve().parents[1]
DEPARTMENTS = [
    "市民協働課", "環境課", "防災安全課", "企画政策課", "財政課", "人事秘書課", "税務課",
    "福祉課", "子育て支援課", "生涯学習課", "都市計画課", "産業振興課",
]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[。！？])", text) if len(s.strip()) > 8]


def _pools() -> tuple[list[str], list[str], list[str], list[str]]:
    programs = load_programs()
    names = [p.name for p in programs]
    program_sentences = [s for p in programs for s in _sentences(p.purpose + p.activities)]
    policies = [p.policy for p in programs if p.policy]
    proposal_sentences: list[str] = []
    titles: list[str] = []
    for name in ("devset.jsonl", "heldout.jsonl"):
        for line in (ROOT / "tests" / "data" / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            proposal_sentences += _sentences(record["body"])
            titles.append(record["title"])
    return names, program_sentences + policies, proposal_sentences, titles


def generate(n_programs: int, n_proposals: int, out: Path, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    names, program_sentences, proposal_sentences, titles = _pools()
    out.mkdir(parents=True, exist_ok=True)
    programs_path = out / "programs.csv"
    with programs_path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "施策名", "目的", "事業名", "取り組み内容", "担当課", "予算"])
        for i in range(n_programs):
            writer.writerow([
                f"S{i:05d}",
                rng.choice(program_sentences)[:30],
                "".join(rng.sample(program_sentences, 2)),
                f"{rng.choice(names)}（{i}）",
                "".join(rng.sample(program_sentences, rng.randint(1, 3))),
                " ".join(rng.sample(DEPARTMENTS, rng.choice([1, 1, 1, 2]))),
                f"{rng.randint(1, 500) * 100:,}千円",
            ])
    proposals_path = out / "proposals.jsonl"
    with proposals_path.open("w", encoding="utf-8") as f:
        for i in range(n_proposals):
            body = ""
            target = rng.randint(150, 400)
            while len(body) < target:
                body += rng.choice(proposal_sentences)
            record = {"id": f"Q{i:06d}", "title": rng.choice(titles), "body": body}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return programs_path, proposals_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--proposals", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/kyodo-scale"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    programs, proposals = generate(args.programs, args.proposals, args.out, args.seed)
    print(f"wrote {programs} and {proposals}")


if __name__ == "__main__":
    main()
