"""``kyodo rematch`` against ``kyodo match`` on the same data: wall time and peak RSS.

    .venv/bin/python benchmarks/bench_rematch.py [--programs 2000] [--proposals 10000] \
        [--repeat 3] [--jobs 1] [--postgres postgresql+psycopg://user:pw@127.0.0.1:5432/postgres] \
        [--mode lexical|semantic] [--changed 10,100]

Generates the catalogue and proposals with benchmarks/generate.py, loads them
into a fresh SQLite database in a temporary folder (and, with --postgres, into
a database created on that server and dropped at the end), then runs
``kyodo rematch`` and ``kyodo match --format jsonl --mode lexical --related 0`` (the
rematch's engine: TF-IDF alone, not the e5 fusion) as subprocesses, alternating,
``--repeat`` times each. Each subprocess's peak RSS is read with
``resource.getrusage(RUSAGE_CHILDREN)`` from a fresh one-shot wrapper process,
so every figure is that command's own: peak RSS of its largest process, and
CPU time (user + system, worker processes included), which other load on the
machine disturbs much less than wall time. Prints a Markdown table of medians and
the ratio rematch / match. The bar (issue 3): rematch within 30 s, peak RSS
under 768 MB, at most 2× match.

``--mode semantic`` runs the rematch with the e5 layer (KYODO_MATCH_MODE):
first one cold run that embeds every text (reported on its own row), then,
for each count of ``--changed``, before each measured rematch that many
proposals get a new sentence, so each measured run embeds those texts and
reads the rest from the embedding cache: the nightly case. The baseline
stays ``kyodo match --mode lexical``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FISCAL_YEAR = 2025

# Runs argv as a child and prints its wall time and peak RSS (KiB on Linux):
# a fresh wrapper per measurement, so RUSAGE_CHILDREN holds that child only.
_MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"code": code, "wall": wall, "cpu": cpu, "rss_kib": usage.ru_maxrss}))
"""


@dataclass
class Sample:
    wall: float
    cpu: float  # user + system seconds of the command and its worker processes
    rss_mb: float


def measure(argv: list[str], env: dict[str, str]) -> Sample:
    """Wall time and peak RSS of one run of ``argv``; raises if it fails."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv], env=env, check=True, capture_output=True, text=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result['code']}: {out.stderr[-2000:]}")
    return Sample(result["wall"], result["cpu"], result["rss_kib"] / 1024)


def kyodo_env(instance: Path, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(KYODO_INSTANCE_PATH=str(instance), KYODO_DATABASE_URL=database_url)
    return env


def kyodo(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run([str(BIN / "kyodo"), *args], env=env, check=True, capture_output=True, text=True)
    return out.stdout + out.stderr


def load_database(database_url: str, instance: Path, programs_csv: Path, proposals_jsonl: Path) -> None:
    """Schema, the catalogue (through ``kyodo programs import``) and the
    proposals (bulk-inserted: the import command would also match each one)."""
    from sqlalchemy import insert
    from sqlmodel import Session

    from models.db import init_db, make_engine
    from models.proposals import hash_token, receipt_number
    from models.tables import Proposal

    env = kyodo_env(instance, database_url)
    kyodo(["db", "upgrade"], env)
    kyodo(["programs", "import", str(programs_csv), "--fiscal-year", str(FISCAL_YEAR)], env)
    engine = make_engine(database_url)
    try:
        init_db(engine)
        now = datetime.now(UTC)
        rows = []
        with proposals_jsonl.open(encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                record = json.loads(line)
                rows.append(
                    {
                        "id": n,
                        "title": record["title"][:500],
                        "body": record["body"],
                        "organization": f"NPO法人 ベンチ{n % 500}",
                        "external_ref": record["id"],
                        "receipt_number": receipt_number(n, now),
                        "status_token_hash": hash_token(secrets.token_urlsafe(24)),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        with Session(engine) as session:
            for start in range(0, len(rows), 2000):
                session.execute(insert(Proposal), rows[start : start + 2000])
            if engine.dialect.name == "postgresql":
                from sqlalchemy import text

                session.execute(text("SELECT setval('proposal_id_seq', (SELECT max(id) FROM proposal))"))
            session.commit()
    finally:
        engine.dispose()


def create_postgres_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh database on the server of ``admin_url``, and a function dropping it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"kyodo_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def change_proposals(database_url: str, count: int, round_no: int) -> None:
    """Append a sentence to ``count`` proposals (different ones each round)."""
    from sqlalchemy import text

    from models.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            total = conn.execute(text("SELECT count(*) FROM proposal")).scalar_one()
            ids = [1 + (round_no * count + k) % total for k in range(count)]
            conn.execute(
                text("UPDATE proposal SET body = body || :extra WHERE id = :id"),
                [{"extra": f"（第{round_no}回の追記）", "id": i} for i in ids],
            )
    finally:
        engine.dispose()


def bench(
    label: str,
    database_url: str,
    work: Path,
    data: tuple[Path, Path],
    repeat: int,
    jobs: int,
    mode: str = "lexical",
    changed: tuple[int, ...] = (100,),
) -> list[str]:
    programs_csv, proposals_jsonl = data
    instance = work / f"instance-{label}"
    instance.mkdir()
    started = time.perf_counter()
    load_database(database_url, instance, programs_csv, proposals_jsonl)
    print(f"{label}: loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    env = kyodo_env(instance, database_url)
    env["KYODO_MATCH_MODE"] = mode
    rematch_argv = [str(BIN / "kyodo"), "rematch", "--jobs", str(jobs)]
    match_argv = [
        str(BIN / "kyodo"), "match", "--programs", str(programs_csv), "--proposals", str(proposals_jsonl),
        "--format", "jsonl", "--jobs", str(jobs), "--mode", "lexical", "--related", "0",
    ]
    rows = []
    if mode == "semantic":
        cold = measure(rematch_argv, env)
        print(f"{label}: cold semantic rematch {cold.wall:.1f} s, {cold.rss_mb:.0f} MB", file=sys.stderr)
        rows.append(
            f"| {label} | `kyodo rematch`, semantic, cold (every text embedded) | {cold.wall:.1f} s | "
            f"{cold.cpu:.1f} s | {cold.rss_mb:.0f} MB | | | |"
        )
    counts = changed if mode == "semantic" else (0,)
    done = 0
    for count in counts:
        samples: dict[str, list[Sample]] = {"rematch": [], "match": []}
        for i in range(repeat):
            for name, argv in (("rematch", rematch_argv), ("match", match_argv)):
                if name == "rematch" and mode == "semantic":
                    done += 1
                    change_proposals(database_url, count, done)
                sample = measure(argv, env)
                samples[name].append(sample)
                print(
                    f"{label} run {i + 1}: {name} {sample.wall:.1f} s, CPU {sample.cpu:.1f} s, {sample.rss_mb:.0f} MB",
                    file=sys.stderr,
                )
        what = f"`kyodo rematch`, semantic, {count} texts changed" if mode == "semantic" else "`kyodo rematch`"
        rows += _rows(label, what, samples)
    return rows


def _rows(label: str, what: str, samples: dict[str, list[Sample]]) -> list[str]:
    wall = {k: statistics.median(s.wall for s in v) for k, v in samples.items()}
    cpu = {k: statistics.median(s.cpu for s in v) for k, v in samples.items()}
    rss = {k: statistics.median(s.rss_mb for s in v) for k, v in samples.items()}
    spread = {k: f"{min(s.wall for s in v):.1f}–{max(s.wall for s in v):.1f}" for k, v in samples.items()}
    return [
        f"| {label} | {what} | {wall['rematch']:.1f} s ({spread['rematch']}) | {cpu['rematch']:.1f} s | "
        f"{rss['rematch']:.0f} MB | {wall['rematch'] / wall['match']:.2f}× | {cpu['rematch'] / cpu['match']:.2f}× | "
        f"{rss['rematch'] / rss['match']:.2f}× |",
        f"| {label} | `kyodo match` | {wall['match']:.1f} s ({spread['match']}) | {cpu['match']:.1f} s | "
        f"{rss['match']:.0f} MB | 1.00× | 1.00× | 1.00× |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--proposals", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="Tokenizing processes for both commands.")
    parser.add_argument("--postgres", metavar="URL", help="Also run on a fresh database of this server.")
    parser.add_argument("--no-sqlite", action="store_true", help="Only the PostgreSQL run.")
    parser.add_argument("--mode", choices=["lexical", "semantic"], default="lexical", help="The rematch's KYODO_MATCH_MODE.")
    parser.add_argument(
        "--changed", default="10,100",
        help="Semantic mode: proposals changed before each rematch, one measured series per count (comma-separated).",
    )
    args = parser.parse_args()
    changed = tuple(int(n) for n in args.changed.split(","))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import generate

    lines = []
    with tempfile.TemporaryDirectory(prefix="kyodo-bench-") as tmp:
        work = Path(tmp)
        data = generate(args.programs, args.proposals, work / "data")
        if not args.no_sqlite:
            url = f"sqlite:///{work / 'bench.sqlite3'}"
            lines += bench("SQLite", url, work, data, args.repeat, args.jobs, args.mode, changed)
        if args.postgres:
            url, drop = create_postgres_database(args.postgres)
            try:
                lines += bench("PostgreSQL", url, work, data, args.repeat, args.jobs, args.mode, changed)
            finally:
                drop()
    print(
        f"{args.proposals} proposals × {args.programs} programs, {os.cpu_count()} cores, "
        f"--jobs {args.jobs}, rematch in {args.mode} mode, median of {args.repeat} runs (min–max)"
    )
    print("| database | command | wall time (min–max) | CPU time | peak RSS | time / match | CPU / match | RSS / match |")
    print("|---|---|---|---|---|---|---|---|")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
