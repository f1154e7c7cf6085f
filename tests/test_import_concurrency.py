"""Imports never block the public (issue 13, row 1). A catalogue import is read
and checked whole, written in short transactions as staged rows nobody sees,
and made current in one short step (office.catalogue, models.program_imports).

* SQLite is in WAL mode with the measured busy timeout on every connection.
* While 20,000 rows are imported by the queue's task, proposals are submitted
  through the app every 0.2 s: every one is stored and none waits a second.
  On SQLite (a file) the task runs in the app's process, as under kyodo serve;
  on PostgreSQL in ``kyodo worker``, as in production. A reader meanwhile only
  ever sees the old catalogue or the new one, never part of it.
* An import whose process is killed (SIGKILL) mid-way, or stopped by Ctrl-C,
  leaves the previous catalogue current and its staged rows unseen, then
  deleted; the same file imports afterwards (SQLite and PostgreSQL).
"""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import case, func
from sqlmodel import Session, col, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from corpus import load_programs
from corpus.files import ReadLimits
from models.db import SQLITE_BUSY_TIMEOUT_MS
from models.import_tables import FAILED, INTERRUPTED, PUBLISHED, STAGING
from models.locks import is_free
from models.program_imports import staged_count
from models.tables import MatchRun, Program, ProgramChange, ProgramImport, Proposal
from office.accounts import create_user
from office.catalogue import IMPORT_LOCK, ImportFile, import_catalogue, recover_interrupted_imports
from web import create_app
from web.db import dispose, get_engine, get_matching
from web.jobs import get_jobs, leases, queued_rematch, recover_interrupted

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = 30  # programs of the bundled catalogue (fiscal year 2008) every test database starts with
EVERY = 0.2  # seconds between two submissions
LIMITS = ReadLimits(max_rows=50_000, max_bytes=200_000_000)
PASSWORD = "correct horse battery"
# The public form's fields, posted directly as a client would (written for testing).
PROPOSAL = {
    "organization": "NPO法人みどりの輪", "representative": "山田花子", "email": "hanako@example.jp",
    "phone": "03-1234-5678", "title": "公園の清掃と子どもの環境学習", "collaboration_type": "co_hosting",
    "body": "地域の公園で清掃活動を行い、子どもたちと一緒にごみの分別やリサイクルについて学ぶ環境学習の講座を開催します。",
    "expected_effect": "公園がきれいになり、子どもの環境への関心が高まる。", "budget_thousand_yen": "300", "consent": "y",
}


def write_catalogue(path: Path, rows: int, seed: int = 0) -> Path:
    """A city's program list of ``rows`` rows (ids S00000…, no 年度 column),
    written for testing from the bundled programs' sentences, recombined: rows
    of realistic length (about 300 characters)."""
    rng = random.Random(seed)
    programs = load_programs()
    sentences = [s + "。" for p in programs for s in (p.purpose + p.activities).split("。") if len(s) > 8]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "施策名", "目的", "事業名", "取り組み内容", "担当課"])
        for i in range(rows):
            program = programs[i % len(programs)]
            writer.writerow([f"S{i:05d}", program.policy, "".join(rng.sample(sentences, 2)), f"{program.name}（{i}）",
                             "".join(rng.sample(sentences, 2)), program.department])
    return path


def _counts(engine) -> tuple[int, int]:
    """(programs seen, active programs seen): one statement, so one snapshot on both backends."""
    with Session(engine) as session:
        seen, active = session.exec(
            select(func.count(), func.coalesce(func.sum(case((col(Program.active).is_(True), 1), else_=0)), 0))
            .select_from(Program)
        ).one()
    return int(seen), int(active)


@pytest.fixture
def busy_app(database_url, tmp_path):
    """The app with the submission rate limit and the read limits raised for 20,000 rows."""
    app = create_app({
        "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": database_url, "SECRET_KEY": "test" * 8,
        "TESTING": True, "WTF_CSRF_ENABLED": False, "SUBMIT_RATE_LIMIT": "100000/minute",
        "IMPORT_MAX_ROWS": LIMITS.max_rows, "IMPORT_MAX_BYTES": LIMITS.max_bytes, "MAX_UPLOAD_LENGTH": 100_000_000,
    })
    yield app
    dispose(app)


def test_sqlite_runs_in_wal_mode_with_the_busy_timeout_on_every_connection(sqlite_template, tmp_path):
    from models.db import make_engine

    path = tmp_path / "kyodo.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    try:
        connections = [engine.connect() for _ in range(3)]  # three pooled connections, each set up on connect
        for connection in connections:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        for connection in connections:
            connection.close()
    finally:
        engine.dispose()
    assert 1_000 <= SQLITE_BUSY_TIMEOUT_MS <= 30_000  # above every hold measured, under a worker's timeout


class Submitter(threading.Thread):
    """A public client of the app posting a proposal every EVERY seconds until stopped."""

    def __init__(self, app):
        super().__init__(daemon=True)
        self.client = app.test_client()
        self.results: list[tuple[int, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            started = time.perf_counter()
            response = self.client.post("/proposals/new", data={**PROPOSAL, "email": f"npo{n}@example.jp"})
            self.results.append((response.status_code, time.perf_counter() - started))
            n += 1
            self.stopping.wait(max(0.0, EVERY - (time.perf_counter() - started)))


class Observer(threading.Thread):
    """A reader counting the programs it sees, as fast as it can."""

    def __init__(self, engine):
        super().__init__(daemon=True)
        self.engine, self.seen, self.stopping = engine, set(), threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.seen.add(_counts(self.engine))
            time.sleep(0.01)


class Importer:
    """The worker of each default: on SQLite the embedded one (kyodo serve runs
    the task in the web process: here a thread of this one), on PostgreSQL the
    production one, ``kyodo worker`` beside the web processes."""

    def __init__(self, app):
        self.app, self.thread, self.process = app, None, None

    def __enter__(self) -> Importer:
        if self.app.config["DATABASE_URL"].startswith("sqlite"):
            huey = get_jobs(self.app).huey
            task = huey.dequeue()
            assert task.name == "import_programs"
            self.thread = threading.Thread(target=huey.execute, args=(task,))
            self.thread.start()
        else:
            env = {**os.environ, "PYTHONPATH": str(ROOT), "KYODO_DATABASE_URL": self.app.config["DATABASE_URL"],
                   "KYODO_INSTANCE_PATH": self.app.instance_path, "KYODO_IMPORT_MAX_ROWS": str(LIMITS.max_rows),
                   "KYODO_IMPORT_MAX_BYTES": str(LIMITS.max_bytes)}
            self.process = subprocess.Popen([str(Path(sys.executable).parent / "kyodo"), "worker"], env=env,
                                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def wait_for(self, engine, import_id: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with Session(engine) as session:
                if session.get(ProgramImport, import_id).status in (PUBLISHED, FAILED):
                    return
            time.sleep(0.1)
        raise AssertionError(f"import {import_id} did not end in {timeout} s")

    def __exit__(self, *_exc) -> None:
        if self.thread is not None:
            self.thread.join(timeout=60)
        if self.process is not None:  # at once: the rematch it queued next is not this test's
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


def test_submissions_during_a_20000_row_import_are_stored_at_once(busy_app, tmp_path, record_property):
    app, rows = busy_app, 20_000
    engine = get_engine(app)
    get_matching(app).rematch(engine=engine)  # a published run: online matching uses its index, as after a night
    with Session(engine) as session:
        create_user(session=session, username="coord", password=PASSWORD)
    coordinator = app.test_client()
    assert coordinator.post("/login", data={"username": "coord", "password": PASSWORD}).status_code == 302
    path = write_catalogue(tmp_path / "r8.csv", rows)
    # Encoded in memory: the test client would spool a body this size to a temporary file it never closes.
    boundary, body = encode_multipart(
        {"kind": "catalogue", "fiscal_year": "2026", "file": FileStorage(io.BytesIO(path.read_bytes()), "r8.csv")}
    )
    queued = coordinator.post("/programs/import", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert queued.status_code == 302 and "/programs/imports/" in queued.headers["Location"]
    import_id = int(queued.headers["Location"].rsplit("/", 1)[1])
    submitter, observer = Submitter(app), Observer(engine)
    observer.start()
    submitter.start()
    started = time.perf_counter()
    with Importer(app) as importer:
        importer.wait_for(engine, import_id, timeout=600)
    took = time.perf_counter() - started
    time.sleep(3 * EVERY)  # and a few after the flip
    submitter.stopping.set()
    observer.stopping.set()
    submitter.join(timeout=60)
    observer.join(timeout=60)
    statuses = [status for status, _ in submitter.results]
    latencies = sorted(seconds for _, seconds in submitter.results)
    figures = (f"{app.config['DATABASE_URL'].split(':')[0]}: {rows} rows imported in {took:.1f} s; "
               f"{len(statuses)} submissions, max {latencies[-1] * 1000:.0f} ms, "
               f"median {latencies[len(latencies) // 2] * 1000:.0f} ms")
    record_property("figures", figures)
    assert len(statuses) >= 10 and set(statuses) == {303}, statuses
    with Session(engine) as session:
        stored = session.exec(select(func.count()).select_from(Proposal)).one()
        batch = session.get(ProgramImport, import_id)
    assert stored == len(statuses)
    # Not a timing test (the figures are benchmarks/bench_import_contention.py's): the bound
    # is far above the ~0.1 s a submission waits and far below the old 15 s lock wait and the
    # 10 s busy timeout, so a loaded CI machine does not make it flaky.
    assert latencies[-1] < 5.0, figures
    assert batch.status == PUBLISHED and batch.added == rows
    # Never part of the new catalogue: the old one (30 active) or the new one (20,000 active, 30 past).
    assert observer.seen <= {(BUNDLED, BUNDLED), (BUNDLED + rows, rows)}, observer.seen
    assert (BUNDLED + rows, rows) in observer.seen
    page = coordinator.get(queued.headers["Location"]).data.decode()
    assert "事業一覧を取り込みました（2026年度）：追加 20000件" in page and "完了" in page
    # The rematch the new catalogue needs was queued (kyodo worker may have taken it up already).
    # Between the worker taking the job and its run row, neither is visible: wait for one.
    deadline = time.monotonic() + 60
    while True:
        with Session(engine) as session:
            runs = session.exec(select(func.count()).select_from(MatchRun)).one()
        waiting = (queued_rematch(app) or {}).get("reason") == "catalogue r8.csv"
        if waiting or runs == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if not (waiting or runs == 2):
        # The worker this test stops at once (Importer.__exit__) was stopped after publishing but
        # before its task returned (it queues the rematch last), or after taking the rematch but
        # before its run row: the task's lease is left, and the recovery queues that task again.
        jobs = get_jobs(app)
        left = [lease["name"] for lease in leases(jobs).values()]
        assert left in (["rematch"], ["import_programs"]), left
        assert recover_interrupted(jobs) == 1
        if left == ["import_programs"]:  # run again, the import finds itself published and queues the rematch
            task = jobs.huey.dequeue()
            assert task.name == "import_programs"
            jobs.huey.execute(task)
        assert queued_rematch(app) is not None
    assert not list((Path(app.instance_path) / "imports").iterdir())  # the upload is deleted once imported


KILLED_IMPORT = """
import sys
from pathlib import Path

from corpus.files import ReadLimits
from models.db import make_engine
from office.catalogue import ImportFile, import_catalogue


def progress(done, total):
    print(done, flush=True)
    if done >= 1500:
        sys.stdin.readline()  # wait here, mid-import, holding the import lock, until killed


engine = make_engine(sys.argv[1])
import_catalogue(engine=engine, file=ImportFile(Path(sys.argv[2]), 2026, limits=ReadLimits(max_rows=50_000)),
                 after_chunk=progress)
"""


def test_an_import_killed_mid_way_leaves_the_old_catalogue_current(app, engine, tmp_path):
    path = write_catalogue(tmp_path / "big.csv", 6_000)
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_IMPORT, app.config["DATABASE_URL"], str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as child:
        try:
            staged = [int(child.stdout.readline()) for _ in range(3)]
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert staged == [500, 1000, 1500]
    with Session(engine) as session:
        batch = session.exec(select(ProgramImport).order_by(col(ProgramImport.id).desc())).first()
        assert batch.status == STAGING and batch.rows_done == 1500
        assert staged_count(session=session, import_id=batch.id) == 1500  # written, and seen by nobody:
    assert _counts(engine) == (BUNDLED, BUNDLED)
    # The next start of the app (web.db) deletes them, as would the next import; the
    # old catalogue never moved.
    restarted = create_app({"INSTANCE_PATH": str(tmp_path / "restarted"), "DATABASE_URL": app.config["DATABASE_URL"],
                            "SECRET_KEY": "test" * 8, "TESTING": True})
    try:
        get_engine(restarted)
    finally:
        dispose(restarted)
    assert recover_interrupted_imports(engine=engine) == 0  # nothing left to recover
    with Session(engine) as session:
        batch = session.get(ProgramImport, batch.id)
        assert batch.status == FAILED and batch.failure == INTERRUPTED
        assert staged_count(session=session, import_id=batch.id) == 0
    assert is_free(engine, IMPORT_LOCK)
    again = import_catalogue(engine=engine, file=ImportFile(path, 2026, limits=LIMITS))
    assert again.status == PUBLISHED and again.added == 6_000
    assert _counts(engine) == (BUNDLED + 6_000, 6_000)


def test_an_import_stopped_by_ctrl_c_imports_nothing(app, engine, tmp_path):
    path = write_catalogue(tmp_path / "stopped.csv", 2_000)

    def stop(done: int, _total: int) -> None:
        if done >= 1000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_catalogue(engine=engine, file=ImportFile(path, 2026, limits=LIMITS), after_chunk=stop)
    with Session(engine) as session:
        batch = session.exec(select(ProgramImport).order_by(col(ProgramImport.id).desc())).first()
        assert batch.status == FAILED and batch.rows_done == 1000 and "KeyboardInterrupt" in batch.error
        assert staged_count(session=session, import_id=batch.id) == 0
    assert _counts(engine) == (BUNDLED, BUNDLED)
    assert is_free(engine, IMPORT_LOCK)


def test_a_bad_row_anywhere_imports_nothing(app, engine, tmp_path):
    path = write_catalogue(tmp_path / "late.csv", 3_000)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2_900] = "S02899,施策,,,,課"  # line 2,901: no 事業名, no 目的, no 取り組み内容
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batch = import_catalogue(engine=engine, file=ImportFile(path, 2026, limits=LIMITS))
    assert batch.status == FAILED and [p["line"] for p in batch.problems] == [2_901]
    assert batch.rows_done == 0  # refused before a row was written
    assert _counts(engine) == (BUNDLED, BUNDLED)


def test_a_re_import_changes_every_row_in_one_step(app, engine, tmp_path):
    rows = 5_000
    first = write_catalogue(tmp_path / "first.csv", rows)
    assert import_catalogue(engine=engine, file=ImportFile(first, 2026, limits=LIMITS)).added == rows
    revised = tmp_path / "revised.csv"
    with first.open(encoding="utf-8", newline="") as f, revised.open("w", encoding="utf-8", newline="") as g:
        reader, writer = csv.reader(f), csv.writer(g)
        writer.writerow(next(reader))
        writer.writerows([*row[:2], row[2] + "（改訂）", *row[3:]] for row in reader)
    seen: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with Session(engine) as session:
                seen.add(session.exec(select(func.count()).select_from(Program)
                                       .where(col(Program.purpose).like("%（改訂）"))).one())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        batch = import_catalogue(engine=engine, file=ImportFile(revised, 2026, limits=LIMITS))
    finally:
        stop.set()
        watcher.join(timeout=60)
    assert batch.status == PUBLISHED and batch.updated == rows and batch.added == 0
    assert seen <= {0, rows} and rows in seen  # the old texts or the new ones, never some of each
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(ProgramChange)).one() == 0  # applied, then cleared
        program = session.exec(select(Program).where(col(Program.external_id) == "S00001")).one()
        assert program.source_file == "revised.csv" and program.purpose.endswith("（改訂）")
