"""Server time and SQL queries per page of the web app on a seeded database.

    .venv/bin/python benchmarks/bench_web.py [--programs 2000] [--proposals 10000] \
        [--requests 60] [--repeat 3] [--mode lexical|semantic]

Seeds a fresh SQLite database in a temporary folder (benchmarks/generate.py
data, loaded as in bench_rematch.py, then ``kyodo rematch`` for the
suggestions and a few decisions), starts the app under gunicorn (one sync
worker) on 127.0.0.1 at a free port, and sends a fixed number of requests,
one at a time, from this process:

* the review queue: newest first (the default), and every other time by
  score, a deep page and a filter,
* a proposal page (logged in, random proposals, some with decisions),
* a public submission (form, CSRF token, POST), stored with its suggestions.

The served app is ``counting_app()`` below: the app of ``web.create_app()``
with a SQLAlchemy ``before_cursor_execute`` listener and two response headers,
the in-app time of the request and its number of SQL queries. Prints a
Markdown table of medians (median over ``--repeat`` rounds of each round's
median) with the queries per page (min–max over every request: one figure
means a fixed number, no N+1). The bar (issue 4): queue and proposal page under
100 ms, submission under 150 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "benchmarks"))
USER, PASSWORD = "bench", "bench-password-0"
TIME_HEADER, QUERIES_HEADER = "X-Bench-Server-Ms", "X-Bench-Queries"


def counting_app() -> Any:
    """``web.create_app()`` with the per-request time and SQL count as headers."""
    from flask import g
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from web import create_app

    app = create_app()
    local = threading.local()

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        local.queries = getattr(local, "queries", 0) + 1

    @app.before_request
    def _start() -> None:
        local.queries = 0
        g.bench_started = time.perf_counter()

    @app.after_request
    def _headers(response: Any) -> Any:
        response.headers[TIME_HEADER] = f"{(time.perf_counter() - g.bench_started) * 1000:.2f}"
        response.headers[QUERIES_HEADER] = str(local.queries)
        return response

    return app


# -- seeding -------------------------------------------------------------------


def seed(work: Path, n_programs: int, n_proposals: int) -> dict[str, str]:
    """A database with the data, one rematch, a coordinator and some decisions."""
    from bench_rematch import kyodo, kyodo_env, load_database
    from generate import generate

    instance = work / "instance"
    instance.mkdir()
    url = f"sqlite:///{work / 'web.sqlite3'}"
    programs_csv, proposals_jsonl = generate(n_programs, n_proposals, work / "data")
    load_database(url, instance, programs_csv, proposals_jsonl)
    env = kyodo_env(instance, url)
    output = kyodo(["rematch", "--jobs", "2"], env)
    print(next(line for line in output.splitlines() if line.startswith("rematch: run")), file=sys.stderr)
    subprocess.run(
        [str(BIN / "kyodo"), "users", "create", USER, "--password-stdin"],
        input=PASSWORD + "\n", env=env, check=True, capture_output=True, text=True,
    )
    _decide_some(url, n_proposals)
    return env


def _decide_some(url: str, n_proposals: int) -> None:
    """Accept one and reject one suggestion on every 50th proposal."""
    from sqlmodel import Session, col, select

    from models.db import make_engine
    from models.tables import Proposal, Suggestion
    from office import commands
    from office.commands import Actor

    engine = make_engine(url)
    with Session(engine) as session:
        for proposal_id in range(1, n_proposals + 1, 50):
            programs = session.exec(
                select(col(Suggestion.program_id)).where(col(Suggestion.proposal_id) == proposal_id)
                .order_by(col(Suggestion.rank)).limit(2)
            ).all()
            proposal = session.get(Proposal, proposal_id)
            for program_id, verdict in zip(programs, ("accepted", "rejected"), strict=False):
                commands.decide(session=session, proposal=proposal, program_id=program_id, verdict=verdict,
                                note="ベンチマーク", actor=Actor(name="支援室"))
    engine.dispose()


# -- the server -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    path = os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), env.get("PYTHONPATH")]))
    env = dict(env, KYODO_SUBMIT_RATE_LIMIT="100000/minute", PYTHONPATH=path)
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "bench_web:counting_app()"],
        env=env, cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


# -- the client ---------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _csrf(html: str) -> str:
    match = _CSRF.search(html)
    if match is None:
        raise RuntimeError("no csrf_token in the page")
    return match.group(1)


class Client:
    def __init__(self, base: str):
        import requests

        self.base = base
        self.http = requests.Session()

    def get(self, path: str) -> Any:
        response = self.http.get(self.base + path, allow_redirects=False, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        return response

    def post(self, path: str, data: dict[str, str]) -> Any:
        response = self.http.post(self.base + path, data=data, allow_redirects=False, timeout=30)
        if response.status_code not in (302, 303):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")
        return response

    def login(self) -> None:
        token = _csrf(self.get("/login").text)
        self.post("/login", {"username": USER, "password": PASSWORD, "csrf_token": token, "next": ""})


def _sample(response: Any) -> tuple[float, int]:
    return float(response.headers[TIME_HEADER]), int(response.headers[QUERIES_HEADER])


QUEUE_PATHS = {
    "queue": "/review",
    "queue by score": "/review?sort=score",
    "queue page 200": "/review?page=200",
    "queue filtered": "/review?status=received&sort=oldest",
}


def _proposal_data(rng: random.Random, bodies: list[str], n: int) -> dict[str, str]:
    return {
        "organization": f"NPO法人 ベンチ送信{n}", "representative": "山田 花子",
        "email": f"bench{n}@example.jp", "phone": "", "title": "地域の見守りと防災の取り組み",
        "body": rng.choice(bodies), "expected_effect": "地域のつながりが強まる。",
        "collaboration_type": "other", "budget_thousand_yen": "", "action": "submit",
    }


def run_round(
    base: str, n_requests: int, n_proposals: int, bodies: list[str], rng: random.Random, offset: int
) -> dict[str, list[tuple[float, float, int]]]:
    """(in-app ms, round-trip ms, queries) of each request, by page."""
    coordinator, public = Client(base), Client(base)
    coordinator.login()
    out: dict[str, list[tuple[float, float, int]]] = {kind: [] for kind in [*QUEUE_PATHS, "proposal", "submission"]}

    def timed(kind: str, call: Any) -> None:
        start = time.perf_counter()
        response = call()
        wall = (time.perf_counter() - start) * 1000
        server, queries = _sample(response)
        out[kind].append((server, wall, queries))

    for i in range(n_requests):
        for kind, path in QUEUE_PATHS.items():
            if i % 2 == 0 or kind == "queue":  # the default page every time, the variants every other
                timed(kind, lambda path=path: coordinator.get(path))
        proposal_id = 1 + 50 * rng.randrange(n_proposals // 50) if i % 4 == 0 else rng.randint(1, n_proposals)
        timed("proposal", lambda p=proposal_id: coordinator.get(f"/review/proposals/{p}"))
        token = _csrf(public.get("/proposals/new").text)
        data = dict(_proposal_data(rng, bodies, offset + i), csrf_token=token)
        timed("submission", lambda d=data: public.post("/proposals/new", d))
    return out


def check_submissions_stored(url: str) -> tuple[int, int, int]:
    """(submitted proposals, those with suggestions, those with fused ones) in the database."""
    from sqlalchemy import func
    from sqlmodel import Session, col, select

    from models.db import make_engine
    from models.tables import Proposal, Suggestion

    engine = make_engine(url)
    with Session(engine) as session:
        ids = session.exec(select(col(Proposal.id)).where(col(Proposal.organization).like("NPO法人 ベンチ送信%"))).all()
        counted = select(func.count(func.distinct(col(Suggestion.proposal_id)))).where(col(Suggestion.proposal_id).in_(ids))
        with_rows = session.exec(counted).one()
        fused = session.exec(counted.where(col(Suggestion.semantic_score).is_not(None))).one()
    engine.dispose()
    return len(ids), int(with_rows), int(fused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--proposals", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=60, help="Requests per page and round.")
    parser.add_argument("--repeat", type=int, default=3, help="Rounds.")
    parser.add_argument(
        "--mode", choices=["lexical", "semantic"], default="lexical",
        help="KYODO_MATCH_MODE of the seeding rematch and the served app.",
    )
    args = parser.parse_args()
    os.environ["KYODO_MATCH_MODE"] = args.mode
    import json

    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="kyodo-web-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        env = seed(work, args.programs, args.proposals)
        print(f"seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        bodies = [json.loads(line)["body"] for line in (work / "data" / "proposals.jsonl").open(encoding="utf-8")][:500]
        port = free_port()
        server = start_server(env, port)
        base = f"http://127.0.0.1:{port}"
        try:
            run_round(base, 5, args.proposals, bodies, rng, 10**6)  # warm-up: index load, caches
            rounds = [
                run_round(base, args.requests, args.proposals, bodies, rng, r * args.requests)
                for r in range(args.repeat)
            ]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        stored = check_submissions_stored(env["KYODO_DATABASE_URL"])
    labels = {
        "queue": "review queue `/review` (newest first)",
        "queue by score": "review queue `/review?sort=score`",
        "queue page 200": "review queue `/review?page=200`",
        "queue filtered": "review queue `/review?status=received&sort=oldest`",
        "proposal": "proposal page `/review/proposals/<id>`",
        "submission": "public submission `POST /proposals/new`",
    }
    print(
        f"{args.proposals} proposals × {args.programs} programs, {args.mode} mode, SQLite, gunicorn 1 sync worker, "
        f"{os.cpu_count()} cores; {args.requests} requests per page × {args.repeat} rounds, one at a time; "
        f"median of the rounds' medians (min–max of the round medians)"
    )
    print("| page | in-app time | round trip | p90 in-app | SQL queries per request |")
    print("|---|---|---|---|---|")
    for kind, label in labels.items():
        medians = [statistics.median(s[0] for s in r[kind]) for r in rounds]
        walls = [statistics.median(s[1] for s in r[kind]) for r in rounds]
        every = sorted(s[0] for r in rounds for s in r[kind])
        queries = sorted({s[2] for r in rounds for s in r[kind]})
        q = str(queries[0]) if len(queries) == 1 else f"{queries[0]}–{queries[-1]}"
        print(
            f"| {label} | {statistics.median(medians):.1f} ms ({min(medians):.1f}–{max(medians):.1f}) | "
            f"{statistics.median(walls):.1f} ms | {every[int(0.9 * (len(every) - 1))]:.1f} ms | {q} |"
        )
    print(f"\nsubmitted proposals stored: {stored[0]}, with suggestions: {stored[1]}, with fused ones: {stored[2]}")


if __name__ == "__main__":
    main()
