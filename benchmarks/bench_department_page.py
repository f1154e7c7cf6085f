"""A department's page (/departments/<name>) with many programs of its own:
the time and size of the paginated page, against the queries the unpaginated
page ran (models.review.department_programs + pairs_for_programs: every
program loaded, then all their pairs through one IN list).

    .venv/bin/python benchmarks/bench_department_page.py --programs 200000

SQLite in a temporary instance, the Flask test client (no HTTP server), the
median of --repeat requests. Prints a Markdown table (docs/security.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import Session  # noqa: E402

from models.review import department_programs, pairs_for_programs  # noqa: E402
from models.tables import Program  # noqa: E402
from office.accounts import create_user  # noqa: E402
from web import create_app  # noqa: E402
from web.db import dispose, get_engine  # noqa: E402

NAME = "ベンチ課"
PASSWORD = "bench-password-long-enough"


def _fill(engine, n: int) -> None:
    rows = [
        {"fiscal_year": 2030, "external_id": f"B-{i:07d}", "name": f"ベンチ事業{i}",
         "purpose": "地域の防災と子育て支援を進める。", "department": NAME if i % 10 else f"{NAME}・広報課"}
        for i in range(n)
    ]
    with engine.begin() as connection:
        for start in range(0, n, 10_000):
            connection.execute(Program.__table__.insert(), rows[start:start + 10_000])  # type: ignore[attr-defined]


def _median(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"INSTANCE_PATH": folder, "SECRET_KEY": "b" * 32, "MATCH_MODE": "lexical",
                          "WTF_CSRF_ENABLED": False})
        engine = get_engine(app)
        _fill(engine, args.programs)
        with Session(engine) as session:
            create_user(session=session, username="bench", password=PASSWORD)
        client = app.test_client()
        assert client.post("/login", data={"username": "bench", "password": PASSWORD}).status_code == 302
        url = f"/departments/{quote(NAME)}"
        sizes: list[int] = []

        def page() -> None:
            response = client.get(url)
            assert response.status_code == 200
            sizes.append(len(response.data))

        def old_queries() -> None:
            with Session(engine) as session:
                programs = department_programs(session=session, department=NAME)
                pairs_for_programs(session=session, program_ids=[p.id for p in programs if p.id is not None])

        paged = _median(page, args.repeat)
        last = _median(lambda: client.get(f"{url}?page=999999"), args.repeat)
        before = _median(old_queries, args.repeat)
        dispose(app)
    print(f"{args.programs:,} programs of one department, SQLite, median of {args.repeat}\n")
    print("| what | time | HTML |")
    print("|---|---|---|")
    print(f"| paginated page, first page | {paged:.2f} s | {sizes[-1] / 1000:.0f} KB |")
    print(f"| paginated page, last page | {last:.2f} s | |")
    print(f"| the unpaginated page's two queries alone (before) | {before:.2f} s | |")


if __name__ == "__main__":
    main()
