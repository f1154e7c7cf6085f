"""Background jobs (web/jobs.py, docs/jobs.md): the nightly rematch at
KYODO_REMATCH_AT in Japan time, the coalesced rematch request, a task retried
after its worker is killed. Each queue test runs on SqliteHuey in the test's
folder and on RedisHuey at 127.0.0.1:6379 (db 13, a key prefix of its own,
removed afterwards); Redis not answering fails the test, it is not skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models.clock import JST
from models.locks import acquire
from models.tables import MatchRun, Program
from office.catalogue import set_program_keywords
from office.rematch import REMATCH_LOCK
from web import create_app
from web.cli import cli
from web.db import dispose
from web.jobs import (
    LEASE_PREFIX,
    QUEUED_KEY,
    Jobs,
    install_jobs,
    leases,
    queued_rematch,
    recover_interrupted,
    request_rematch,
    start_embedded_worker,
)

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own; our keys carry a unique prefix too
QUEUES = ["sqlite", "redis"]


def _redis_or_fail() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required for the job tests and does not answer at {REDIS_URL}: {exc}", pytrace=False)


def _queue_url(kind: str, folder: Path) -> tuple[str, str]:
    """(KYODO_QUEUE_URL, huey name) of a queue of this test alone."""
    if kind == "redis":
        _redis_or_fail()
        return REDIS_URL, f"kyodo_test_{uuid.uuid4().hex[:12]}"
    return f"sqlite:///{folder / 'jobs.sqlite3'}", "kyodo"


def _clean(jobs: Jobs) -> None:
    jobs.huey.flush()
    storage = jobs.huey.storage
    if type(jobs.huey).__name__ == "RedisHuey":  # every key of this name, counters included
        for key in storage.conn.scan_iter(f"huey.*{storage.name}*"):
            storage.conn.delete(key)
        assert list(storage.conn.scan_iter(f"huey.*{storage.name}*")) == []


def _away_from_now() -> str:
    """A REMATCH_AT twelve hours from now: no nightly run fires during a test."""
    return f"{(datetime.now(JST) + timedelta(hours=12)):%H:%M}"


@pytest.fixture(params=QUEUES)
def queue_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def jobs(app, queue_kind: str, tmp_path: Path) -> Iterator[Jobs]:
    """The app's jobs on this test's queue (the app: SQLite and PostgreSQL)."""
    app.config["REMATCH_AT"] = _away_from_now()
    url, name = _queue_url(queue_kind, tmp_path)
    installed = install_jobs(app, url=url, name=name)
    yield installed
    _clean(installed)


@pytest.fixture
def bare_app(tmp_path: Path) -> Iterator:
    """An app whose database is never touched (queue-only tests)."""
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "t" * 32, "TESTING": True,
                      "REMATCH_AT": _away_from_now()})
    yield app
    dispose(app)


@pytest.fixture
def bare_jobs(bare_app, queue_kind: str, tmp_path: Path) -> Iterator[Jobs]:
    url, name = _queue_url(queue_kind, tmp_path)
    installed = install_jobs(bare_app, url=url, name=name)
    yield installed
    _clean(installed)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)


def _names(tasks) -> set[str]:
    return {t.name for t in tasks}


# -- when things run ------------------------------------------------------------------


def test_the_nightly_rematch_fires_at_rematch_at_in_japan_time(bare_app, queue_kind, tmp_path):
    bare_app.config["REMATCH_AT"] = "02:30"
    url, name = _queue_url(queue_kind, tmp_path)
    jobs = install_jobs(bare_app, url=url, name=name)
    try:
        huey = jobs.huey
        assert huey.utc is True  # the consumer hands the validators naive UTC times
        # 02:30 JST on 2 April is 17:30 UTC on 1 April.
        assert "nightly_rematch" in _names(huey.read_periodic(datetime(2026, 4, 1, 17, 30)))
        assert "nightly_rematch" in _names(huey.read_periodic(datetime(2026, 4, 1, 17, 30, 59)))
        for not_yet in (datetime(2026, 4, 1, 17, 29), datetime(2026, 4, 1, 17, 31), datetime(2026, 4, 1, 2, 30)):
            assert "nightly_rematch" not in _names(huey.read_periodic(not_yet)), not_yet
        # Mail every minute, the recovery of interrupted tasks every five.
        assert "send_mail" in _names(huey.read_periodic(datetime(2026, 4, 1, 17, 29)))
        assert "recover_interrupted" in _names(huey.read_periodic(datetime(2026, 4, 1, 17, 35)))
        assert "recover_interrupted" not in _names(huey.read_periodic(datetime(2026, 4, 1, 17, 36)))

        bare_app.config["REMATCH_AT"] = "23:45"  # the same day in UTC
        late = install_jobs(bare_app, url=url, name=name).huey
        assert "nightly_rematch" in _names(late.read_periodic(datetime(2026, 4, 1, 14, 45)))
        assert "nightly_rematch" not in _names(late.read_periodic(datetime(2026, 4, 1, 23, 45)))
    finally:
        _clean(jobs)


def test_the_nightly_task_joins_a_rematch_already_queued(bare_jobs):
    bare_jobs.nightly_rematch.call_local()
    assert bare_jobs.huey.pending_count() == 1 and queued_rematch(bare_jobs.app)["reason"] == "nightly"
    assert request_rematch(bare_jobs.app, "keywords") is False
    bare_jobs.nightly_rematch.call_local()
    assert bare_jobs.huey.pending_count() == 1


@pytest.mark.parametrize("bad", ["2:30", "24:00", "02:60", "0230", "nightly"])
def test_a_bad_rematch_at_stops_the_app_with_a_clear_error(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("KYODO_REMATCH_AT", bad)
    with pytest.raises(ValueError, match=r"KYODO_REMATCH_AT: expected HH:MM in Japan time"):
        create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "t" * 32})


def test_an_unknown_queue_url_stops_the_app(tmp_path, monkeypatch):
    monkeypatch.setenv("KYODO_QUEUE_URL", "amqp://127.0.0.1/")
    with pytest.raises(ValueError, match="KYODO_QUEUE_URL: expected redis://"):
        create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "t" * 32})


def test_the_default_queue_is_a_sqlite_file_in_the_instance_folder(tmp_path):
    from web.jobs import get_jobs

    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "SECRET_KEY": "t" * 32})
    huey = get_jobs(app).huey
    assert type(huey).__name__ == "SqliteHuey" and huey.storage.filename == str(tmp_path / "inst" / "jobs.sqlite3")


# -- the coalesced rematch ------------------------------------------------------------


def _runs(engine) -> list[MatchRun]:
    with Session(engine) as session:
        return list(session.exec(select(MatchRun).order_by(MatchRun.id)))


def _edit_keywords(engine, external_id: str, words: str) -> bool:
    with Session(engine) as session:
        program = session.exec(select(Program).where(Program.external_id == external_id)).one()
        return set_program_keywords(session=session, program=program, keywords=words)


def test_several_edits_queue_one_rematch_which_a_real_worker_runs_once(jobs, engine):
    from factories import create_random_proposal

    with Session(engine) as session:
        create_random_proposal(session)
    assert request_rematch(jobs.app, "catalogue import") is True
    for n, words in enumerate(["避難所", "備蓄", "防災訓練"]):
        assert _edit_keywords(engine, f"H20-0{n + 1}", words)
        assert request_rematch(jobs.app, "keywords") is False  # joins the queued one
    assert jobs.huey.pending_count() == 1
    assert queued_rematch(jobs.app)["reason"] == "catalogue import"

    worker = start_embedded_worker(jobs.app)
    try:
        wait_for(lambda: [r.status for r in _runs(engine)] == ["succeeded"] and not leases(jobs),
                 what="the rematch to be published")
    finally:
        worker.stop()
    assert len(_runs(engine)) == 1 and _runs(engine)[0].n_proposals == 1
    assert queued_rematch(jobs.app) is None and jobs.huey.pending_count() == 0
    # Started and done: the next edit queues the next run.
    assert request_rematch(jobs.app, "keywords") is True


def test_a_lost_queued_flag_does_not_block_rematches_forever(bare_jobs):
    stale = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    bare_jobs.huey.put(QUEUED_KEY, {"task_id": "gone", "reason": "lost", "queued_at": stale})
    assert request_rematch(bare_jobs.app, "keywords") is True
    assert queued_rematch(bare_jobs.app)["reason"] == "keywords" and bare_jobs.huey.pending_count() == 1
    # A fresh flag whose task is queued is respected.
    assert request_rematch(bare_jobs.app, "again") is False


def test_a_rematch_waits_while_another_holds_the_lock(app, engine, tmp_path):
    """immediate mode: the task runs in the request, on huey's in-memory storage."""
    jobs = install_jobs(app, url=f"sqlite:///{tmp_path / 'q.sqlite3'}")
    jobs.huey.immediate = True
    lock = acquire(engine, REMATCH_LOCK)  # e.g. kyodo rematch from cron
    try:
        assert request_rematch(app, "keywords") is True
    finally:
        lock.release()
    assert _runs(engine) == []
    (retry,) = jobs.huey.scheduled()
    assert retry.name == "rematch" and retry.eta > datetime.now(UTC).replace(tzinfo=None)
    assert queued_rematch(app)["task_id"] == retry.id  # still queued, not started: edits join it
    assert request_rematch(app, "more keywords") is False


def test_a_failed_rematch_is_retried_later(app, engine, tmp_path):
    jobs = install_jobs(app, url=f"sqlite:///{tmp_path / 'q.sqlite3'}")
    jobs.huey.immediate = True
    with Session(engine) as session:
        for program in session.exec(select(Program)):
            program.active = False
            session.add(program)
        session.commit()
    request_rematch(app, "keywords")  # no active programs: the run fails
    assert [r.status for r in _runs(engine)] == ["failed"]
    (retry,) = jobs.huey.scheduled()
    assert retry.name == "rematch" and retry.retries == jobs.rematch.retries - 1 == 1


def test_the_rematch_is_queued_by_the_commands(runner, app):
    """kyodo jobs rematch and kyodo programs keywords queue on the instance's default queue."""
    from web.jobs import get_jobs

    first = runner.invoke(cli, ["jobs", "rematch"])
    assert first.exit_code == 0 and "rematch queued" in first.output, first.output
    sheet = app.instance_path + "/k.csv"
    Path(sheet).write_text("id,キーワード\nH20-01,まちの憲法\n", encoding="utf-8")
    edited = runner.invoke(cli, ["programs", "keywords", sheet])
    assert edited.exit_code == 0 and "rematch queued" in edited.output, edited.output
    huey = get_jobs(app).huey
    assert huey.pending_count() == 1  # both joined one run
    status = runner.invoke(cli, ["jobs", "status"])
    assert "pending: 1" in status.output and "rematch queued: cli" in status.output
    assert "worker last seen: never" in status.output
    assert "--workers" in runner.invoke(cli, ["worker", "--help"]).output


# -- a worker killed mid-task -------------------------------------------------------------


def _register_probe(jobs: Jobs):
    """A task that waits to be killed on its first attempt and finishes on the next."""

    def probe(folder: str) -> None:
        attempts = Path(folder, "attempts")
        before = len(attempts.read_text()) if attempts.exists() else 0
        attempts.write_text("x" * (before + 1))
        if before == 0:
            time.sleep(120)
        Path(folder, "done").touch()

    probe.__module__ = "kyodo_probe"  # the same task name in this process and in the worker's
    return jobs.huey.task(name="probe")(probe)


def worker_process_main() -> None:
    """The killed worker: a real ``run_worker`` consumer with the probe registered."""
    from web.jobs import run_worker

    app = create_app({"INSTANCE_PATH": os.environ["PROBE_INSTANCE"], "SECRET_KEY": "t" * 32,
                      "REMATCH_AT": _away_from_now()})
    _register_probe(install_jobs(app, url=os.environ["PROBE_QUEUE_URL"], name=os.environ["PROBE_NAME"]))
    run_worker(app)


@pytest.mark.parametrize("retries", [1, 0])
def test_a_task_whose_worker_is_killed_is_retried(bare_app, queue_kind, tmp_path, retries):
    url, name = _queue_url(queue_kind, tmp_path)
    jobs = install_jobs(bare_app, url=url, name=name)
    probe = _register_probe(jobs)
    folder = tmp_path / "probe"
    folder.mkdir()
    child = None
    try:
        jobs.huey.enqueue(probe.s(str(folder), retries=retries))
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.path.insert(0, 'tests'); "
             "import test_jobs; test_jobs.worker_process_main()"],
            cwd=ROOT, env={**os.environ, "PROBE_INSTANCE": str(tmp_path / "child"), "PROBE_QUEUE_URL": url,
                           "PROBE_NAME": name},
        )
        wait_for(lambda: (folder / "attempts").exists() or child.poll() is not None,
                 what="the worker to start the probe")
        assert child.poll() is None, f"the worker process exited with {child.returncode}"
        # The worker may be sending mail too (its every-minute task): the probe's lease is ours.
        (lease,) = [lease for lease in leases(jobs).values() if lease["name"] == "probe"]
        assert lease["pid"] == child.pid
        child.send_signal(signal.SIGKILL)  # no handler, no clean-up: as OOM or power loss
        child.wait(timeout=10)

        worker = start_embedded_worker(bare_app)  # recovers at start, as kyodo worker does
        try:
            if retries:
                wait_for(lambda: (folder / "done").exists(), what="the probe to run again")
            else:
                time.sleep(1)
        finally:
            worker.stop()
        assert (folder / "attempts").read_text() == ("xx" if retries else "x")
        assert (folder / "done").exists() is bool(retries)
        assert not [k for k in jobs.huey.all_results() if k.startswith(LEASE_PREFIX)]
        # Nothing of the probe is left to run (the worker's own periodic mail task may be queued).
        assert recover_interrupted(jobs) == 0
        assert not [t for t in jobs.huey.pending() if "probe" in t.name]
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        _clean(jobs)
