"""Public submissions while a big program list is imported, on the embedded default.

    .venv/bin/python benchmarks/bench_import_contention.py [--rows 200000] [--every 2.0]

Issue 13, row 1: a 200,000-row CSV uploaded on the SQLite default while NPOs
submit every 2 s held the write lock for 150 s, and 8 of 11 submissions got a
500 "database is locked". Here, in a temporary folder:

* a fresh instance (``kyodo db upgrade``, a coordinator, ``kyodo rematch`` so
  that online matching uses the published run's index, as it does after the
  first night) served by ``kyodo serve`` (SQLite, the embedded worker) on a
  free loopback port, with the limits raised for the file (IMPORT_MAX_ROWS,
  IMPORT_MAX_BYTES, MAX_UPLOAD_LENGTH) and the submission rate limit off;
* a CSV of ``--rows`` programs (benchmarks/generate.py: the bundled corpus's
  sentences recombined, ids given), uploaded at ``/programs/import`` by the
  coordinator: the page queues it and the embedded worker imports it;
* meanwhile a public client posts a proposal every ``--every`` seconds
  (``POST /proposals/new``, the fields posted directly) and a probe in this
  process takes SQLite's write lock (``BEGIN IMMEDIATE``; its own 60 s busy
  timeout) every 50 ms: its wait is how long the import held the lock at once,
  the figure the busy timeout (models.db.SQLITE_BUSY_TIMEOUT_MS) is set from;
* until the import's page says it ended, then three more submissions.

Prints the import's figures (its time from the worker's start to publication,
rows per second), every submission's status and the latency figures, and the
probe's longest wait. Exits 1 when a submission failed or is missing, or one
took 1 s or more.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
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
PROPOSAL = {
    "organization": "NPO法人 取り込み中の送信", "representative": "山田 花子", "email": "npo@example.jp",
    "phone": "", "title": "地域の見守りと防災の取り組み", "collaboration_type": "other", "budget_thousand_yen": "",
    "body": "地域の高齢者の見守りと、子どもたちと一緒に防災の備えを学ぶ講座を開きます。",
    "expected_effect": "地域のつながりが強まる。", "consent": "y",
}
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def kyodo(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    out = subprocess.run([str(BIN / "kyodo"), *args], env=env, input=stdin, check=True, capture_output=True, text=True)
    return out.stdout + out.stderr


def prepare(work: Path, rows: int) -> tuple[dict[str, str], Path]:
    """The instance (schema, a coordinator, one rematch) and the CSV to upload."""
    from generate import generate

    instance, db = work / "instance", work / "kyodo.sqlite3"
    env = dict(os.environ, KYODO_INSTANCE_PATH=str(instance), KYODO_DATABASE_URL=f"sqlite:///{db}",
               KYODO_MATCH_MODE="lexical", KYODO_SUBMIT_RATE_LIMIT="100000/minute",
               KYODO_IMPORT_MAX_ROWS=str(rows + 10), KYODO_IMPORT_MAX_BYTES=str(2_000_000_000),
               KYODO_MAX_UPLOAD_LENGTH=str(2_000_000_000))
    instance.mkdir()
    kyodo(["db", "upgrade"], env)
    kyodo(["users", "create", USER, "--password-stdin"], env, stdin=PASSWORD + "\n")
    kyodo(["rematch"], env)
    programs, _ = generate(rows, 0, work / "data")
    return env, programs


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    import requests

    server = subprocess.Popen([str(BIN / "kyodo"), "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
            return server
        except requests.RequestException:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError(f"kyodo serve did not start: {log.read_text()[-2000:]}")


def csrf(html: str) -> str:
    found = _CSRF.search(html)
    if found is None:
        raise RuntimeError("no csrf_token in the page")
    return found.group(1)


def upload(base: str, path: Path) -> tuple[Any, str, float]:
    """Log in and upload; the coordinator's client and the import page's path."""
    import requests

    client = requests.Session()
    token = csrf(client.get(f"{base}/login", timeout=30).text)
    client.post(f"{base}/login", data={"username": USER, "password": PASSWORD, "csrf_token": token}, timeout=30)
    token = csrf(client.get(f"{base}/programs/import", timeout=30).text)
    started = time.perf_counter()
    with path.open("rb") as f:
        answer = client.post(f"{base}/programs/import", allow_redirects=False, timeout=600,
                             data={"kind": "catalogue", "fiscal_year": "2026", "csrf_token": token},
                             files={"file": (path.name, f, "text/csv")})
    took = time.perf_counter() - started
    if answer.status_code != 302 or "/programs/imports/" not in answer.headers.get("Location", ""):
        raise RuntimeError(f"upload: {answer.status_code} {answer.text[:1000]}")
    return client, answer.headers["Location"], took


class Submitter(threading.Thread):
    """A public client posting a proposal every ``every`` seconds until stopped."""

    def __init__(self, base: str, every: float):
        super().__init__(daemon=True)
        import requests

        self.base, self.every, self.http = base, every, requests.Session()
        self.results: list[tuple[float, int, float]] = []  # (at, status, seconds)
        self.stopping = threading.Event()
        self.token = csrf(self.http.get(f"{base}/proposals/new", timeout=30).text)

    def submit(self, n: int) -> None:
        data = dict(PROPOSAL, email=f"npo{n}@example.jp", csrf_token=self.token)
        started = time.perf_counter()
        try:
            status = self.http.post(f"{self.base}/proposals/new", data=data, allow_redirects=False, timeout=120).status_code
        except Exception:  # a timeout or a dropped connection counts as a failed submission
            status = 0
        self.results.append((time.monotonic(), status, time.perf_counter() - started))

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            self.submit(n)
            n += 1
            self.stopping.wait(max(0.0, self.every - (time.monotonic() - started)))


class LockProbe(threading.Thread):
    """Takes SQLite's write lock every 50 ms and records how long it waited for it."""

    def __init__(self, db: Path):
        super().__init__(daemon=True)
        self.db, self.waits, self.stopping = db, [0.0], threading.Event()

    def run(self) -> None:
        connection = sqlite3.connect(self.db, timeout=60, isolation_level=None)
        while not self.stopping.wait(0.05):
            started = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            self.waits.append(time.perf_counter() - started)
            connection.execute("COMMIT")
        connection.close()


def follow(client: Any, base: str, page: str, timeout: float) -> str:
    """Poll the import's page until it says it ended; its state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        html = client.get(base + page, timeout=60).text
        state = re.search(r'data-testid="import-state">\s*([^<]+?)\s*<', html)
        if state and state.group(1) in ("完了", "取り込んでいません"):
            return state.group(1)
        time.sleep(1.0)
    raise RuntimeError("the import did not end in time")


def stored(db: Path) -> tuple[int, dict[str, Any]]:
    connection = sqlite3.connect(db)
    try:
        count = connection.execute("SELECT count(*) FROM proposal WHERE organization = ?",
                                   (PROPOSAL["organization"],)).fetchone()[0]
        row = connection.execute("SELECT status, rows_total, added, created_at, started_at, finished_at "
                                 "FROM program_import ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        connection.close()
    keys = ("status", "rows", "added", "created_at", "started_at", "finished_at")
    return int(count), dict(zip(keys, row, strict=True))


def _seconds(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def report(args: argparse.Namespace, size: int, took_upload: float, state: str, subs: list[tuple[float, int, float]],
           count: int, imp: dict[str, Any], waits: list[float]) -> bool:
    latencies = sorted(s for _, _, s in subs)
    failed = [status for _, status, _ in subs if status != 303]
    import_s = _seconds(imp["started_at"], imp["finished_at"])
    print(f"{args.rows:,} rows ({size / 1e6:.0f} MB CSV), SQLite, kyodo serve (embedded worker), "
          f"{os.cpu_count()} cores; a submission every {args.every} s")
    print("| figure | value |\n|---|---|")
    print(f"| upload (POST /programs/import, queued) | {took_upload:.1f} s |")
    print(f"| import: read, check, stage, publish (worker) | {import_s:.1f} s ({imp['rows'] / import_s:,.0f} rows/s), "
          f"{state}, {imp['added']:,} added |")
    print(f"| queued → published | {_seconds(imp['created_at'], imp['finished_at']):.1f} s |")
    print(f"| submissions during and after | {len(subs)}, stored {count}, failed {len(failed)} {failed or ''} |")
    print(f"| submission latency max / p90 / median | {latencies[-1] * 1000:.0f} / "
          f"{latencies[int(0.9 * (len(latencies) - 1))] * 1000:.0f} / {statistics.median(latencies) * 1000:.0f} ms |")
    print(f"| longest wait for the write lock (probe, every 50 ms) | {max(waits) * 1000:.0f} ms |")
    return not failed and count == len(subs) and latencies[-1] < 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="Programs in the uploaded CSV.")
    parser.add_argument("--every", type=float, default=2.0, help="Seconds between two submissions.")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds the import may take.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kyodo-import-bench-") as tmp:
        work = Path(tmp)
        env, csv_path = prepare(work, args.rows)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = serve(env, port, work / "serve.log")
        probe = LockProbe(work / "kyodo.sqlite3")
        try:
            submitter = Submitter(base, args.every)
            probe.start()
            submitter.start()
            client, page, took_upload = upload(base, csv_path)
            state = follow(client, base, page, args.timeout)
            for _ in range(3):  # after the flip as well
                time.sleep(args.every)
            submitter.stopping.set()
            submitter.join(timeout=180)
        finally:
            probe.stopping.set()
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        count, imp = stored(work / "kyodo.sqlite3")
        ok = report(args, csv_path.stat().st_size, took_upload, state, submitter.results, count, imp, probe.waits)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
