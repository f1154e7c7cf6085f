"""The review queue's score sort with and without the covering index (migration 0004).

    .venv/bin/python benchmarks/bench_queue.py [--programs 2000] [--proposals 10000] \
        [--rounds 5] [--calls 10] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Seeds a fresh SQLite database (and, with --postgres, a database created on that
server and dropped at the end) with benchmarks/generate.py data and one
``kyodo rematch`` (10,000 × 2,000: 50,000 published suggestions), then times
``models.queue.review_queue`` in this process for the pages that aggregate
every published suggestion (sort by score, a score filter, new only) and the
default page as a control. Rounds alternate between the two indexes on the
same data: ``ix_suggestion_run_proposal_scores`` (match_run_id, proposal_id,
lexical_score, score, is_new) and the index it replaced,
``ix_suggestion_run_proposal`` (match_run_id, proposal_id). Prints a Markdown
table of medians and the ratio covering / before.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAGES = {
    "`/review?sort=score`": {"sort": "score"},
    "`/review?min_score=0.2&sort=score`": {"sort": "score", "min_score": 0.2},
    "`/review?new_only=1`": {"new_only": True},
    "`/review` (newest first, control)": {},
}
COVERING = ("ix_suggestion_run_proposal_scores", "(match_run_id, proposal_id, lexical_score, score, is_new)")
BEFORE = ("ix_suggestion_run_proposal", "(match_run_id, proposal_id)")


def use_index(engine, which: tuple[str, str]) -> None:
    """Leave exactly one of the two indexes on suggestion."""
    from sqlalchemy import text

    with engine.begin() as conn:
        for name, _ in (COVERING, BEFORE):
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        conn.execute(text(f"CREATE INDEX {which[0]} ON suggestion {which[1]}"))
    # Statistics for the planner; on PostgreSQL also the visibility map that an
    # index-only scan needs (autovacuum keeps it in production).
    analyze = "VACUUM ANALYZE suggestion" if engine.dialect.name == "postgresql" else "ANALYZE suggestion"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(analyze))


def time_page(engine, filters, calls: int) -> float:
    """Median seconds of ``calls`` queue pages, after one warm-up call."""
    from sqlmodel import Session

    from models.queue import review_queue

    samples = []
    with Session(engine) as session:
        review_queue(session=session, filters=filters)
        for _ in range(calls):
            start = time.perf_counter()
            result = review_queue(session=session, filters=filters)
            samples.append(time.perf_counter() - start)
            assert result.page.rows, "the seeded queue is empty"
    return statistics.median(samples)


def bench(label: str, url: str, work: Path, data: tuple[Path, Path], rounds: int, calls: int) -> list[str]:
    from bench_rematch import kyodo, kyodo_env, load_database

    from models.db import make_engine
    from models.queue import QueueFilters

    instance = work / f"instance-{label}"
    instance.mkdir()
    load_database(url, instance, *data)
    env = kyodo_env(instance, url)
    env["KYODO_MATCH_MODE"] = "lexical"  # the queue's SQL is the same in both modes
    kyodo(["rematch", "--jobs", "2"], env)
    engine = make_engine(url)
    times: dict[tuple[str, str], list[float]] = {(p, i[0]): [] for p in PAGES for i in (COVERING, BEFORE)}
    try:
        for n in range(rounds):
            for which in (COVERING, BEFORE) if n % 2 == 0 else (BEFORE, COVERING):
                use_index(engine, which)
                for page, params in PAGES.items():
                    times[(page, which[0])].append(time_page(engine, QueueFilters(**params), calls))
    finally:
        use_index(engine, COVERING)  # as migration 0004 leaves it
        engine.dispose()
    lines = []
    for page in PAGES:
        cover = statistics.median(times[(page, COVERING[0])])
        before = statistics.median(times[(page, BEFORE[0])])
        lines.append(f"| {label} | {page} | {before * 1000:.1f} ms | {cover * 1000:.1f} ms | {cover / before:.2f}× |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--proposals", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5, help="Rounds per index, alternating (default 5).")
    parser.add_argument("--calls", type=int, default=10, help="Timed calls per page and round (default 10).")
    parser.add_argument("--postgres", help="Admin URL of a PostgreSQL server to benchmark too.")
    args = parser.parse_args()

    from bench_rematch import create_postgres_database
    from generate import generate

    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kyodo-bench-queue-") as tmp:
        work = Path(tmp)
        data = generate(args.programs, args.proposals, work / "data")
        lines += bench("SQLite", f"sqlite:///{work / 'queue.sqlite3'}", work, data, args.rounds, args.calls)
        if args.postgres:
            url, drop = create_postgres_database(args.postgres)
            try:
                lines += bench("PostgreSQL", url, work, data, args.rounds, args.calls)
            finally:
                drop()
    print(
        f"{args.proposals} proposals × {args.programs} programs, one lexical rematch; "
        f"median over {args.rounds} rounds per index of each round's median of {args.calls} calls "
        "of models.queue.review_queue (25 rows, in process)"
    )
    print(f"| database | page | before: {BEFORE[1]} | covering: {COVERING[1]} | ratio |")
    print("|---|---|---|---|---|")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
