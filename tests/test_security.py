"""What an instance must be to start (web/security.py, web/ratelimit.py;
docs/security.md): one secret key whatever the number of processes starting
at once, no weak key, a private instance folder and database files, and a
rate-limit store that every gunicorn worker shares (or a refusal to start)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models.tables import Proposal
from web import create_app
from web.db import dispose, get_engine
from web.security import KEY_FILE, MIN_KEY_BYTES, instance_secret_key

BIN = Path(sys.executable).parent
REDIS = "redis://127.0.0.1:6379/0"
KEY = "k" * MIN_KEY_BYTES
PROCESSES = 8
TRIALS = 150


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- one key for every process starting at once -----------------------------------


def _read_keys(barrier, folders, results) -> None:  # a spawned process: every folder, at the same moment
    for folder in folders:
        barrier.wait()
        try:
            results.put((folder, instance_secret_key(Path(folder))))
        except Exception as exc:  # reported to the test, which fails on it
            results.put((folder, f"{type(exc).__name__}: {exc}"))


def test_eight_processes_starting_at_once_read_the_same_key(tmp_path):
    # The case: 8 processes creating the key file at once, many times over.
    folders = [str(tmp_path / f"trial-{n}") for n in range(TRIALS)]
    for folder in folders:
        os.mkdir(folder)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [context.Process(target=_read_keys, args=(barrier, folders, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    keys: dict[str, set[str]] = {}
    for _ in range(PROCESSES * TRIALS):
        folder, key = results.get(timeout=120)
        keys.setdefault(folder, set()).add(key)
    for worker in workers:
        worker.join(timeout=30)
    bad = {folder: seen for folder, seen in keys.items() if len(seen) != 1 or len(next(iter(seen))) != 64}
    assert not bad, f"{len(bad)} of {TRIALS} trials gave differing or empty keys: {list(bad.items())[:3]}"
    for folder in folders:
        path = Path(folder) / KEY_FILE
        assert path.read_text() == next(iter(keys[folder])) and _mode(path) == 0o600
        assert os.listdir(folder) == [KEY_FILE], "a temporary key file was left behind"


# -- weak keys ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a", "x" * (MIN_KEY_BYTES - 1), "鍵" * 10])  # 鍵 is 3 bytes: 30
def test_a_short_key_from_the_environment_refuses_to_start(tmp_path, monkeypatch, key):
    monkeypatch.setenv("KYODO_SECRET_KEY", key)
    with pytest.raises(ValueError, match="^KYODO_SECRET_KEY: the secret key is") as refused:
        create_app({"INSTANCE_PATH": str(tmp_path)})
    assert "\n" not in str(refused.value) and f"at least {MIN_KEY_BYTES}" in str(refused.value)


def test_a_key_of_32_bytes_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("KYODO_SECRET_KEY", "鍵" * 11)  # 33 bytes in 11 characters: bytes count
    assert create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"] == "鍵" * 11


def test_a_short_key_in_config_py_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.delenv("KYODO_SECRET_KEY", raising=False)
    (tmp_path / "config.py").write_text("SECRET_KEY = 'dev'\n")
    with pytest.raises(ValueError, match=r"^SECRET_KEY \(config.py\): the secret key is 3 bytes long"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_an_empty_key_file_refuses_to_start_and_names_the_file(tmp_path, monkeypatch):
    # What the old race left behind: before, every form page was a 500 for good.
    monkeypatch.delenv("KYODO_SECRET_KEY", raising=False)
    (tmp_path / KEY_FILE).write_text("")
    with pytest.raises(ValueError, match="delete the file") as refused:
        create_app({"INSTANCE_PATH": str(tmp_path)})
    assert str(tmp_path / KEY_FILE) in str(refused.value)


# -- private files ------------------------------------------------------------------


def test_a_new_instance_folder_and_its_files_are_private(tmp_path, monkeypatch):
    monkeypatch.delenv("KYODO_SECRET_KEY", raising=False)
    folder = tmp_path / "instance"
    app = create_app({"INSTANCE_PATH": str(folder)})
    with Session(get_engine(app)) as session:  # the database is created and migrated on first use
        assert session.exec(select(Proposal)).all() == []
    database = folder / "kyodo.sqlite3"
    # WAL side files are made by SQLite with the database's own mode.
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        connection.execute("INSERT INTO probe VALUES (1)")
        connection.commit()
        sides = [Path(f"{database}{s}") for s in ("-wal", "-shm")]
        assert all(p.exists() for p in sides)
        modes = {p.name: _mode(p) for p in (database, *sides, folder / KEY_FILE)}
    dispose(app)
    assert _mode(folder) == 0o700
    assert modes == dict.fromkeys(modes, 0o600), modes


def test_existing_files_are_made_private_at_start(tmp_path, monkeypatch):
    monkeypatch.delenv("KYODO_SECRET_KEY", raising=False)
    folder = tmp_path / "instance"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    files = {name: folder / name for name in
             ("kyodo.sqlite3", "kyodo.sqlite3-wal", "kyodo.sqlite3-shm", "jobs.sqlite3", "config.py")}
    for path in files.values():
        path.write_text("")
        path.chmod(0o644)
    (folder / KEY_FILE).write_text("f" * 64)
    (folder / KEY_FILE).chmod(0o644)
    create_app({"INSTANCE_PATH": str(folder)})
    assert _mode(folder) == 0o700
    assert {p.name: _mode(p) for p in [*files.values(), folder / KEY_FILE]} == dict.fromkeys(
        [*files, KEY_FILE], 0o600
    )


def test_a_sqlite_file_outside_the_instance_is_private_too(tmp_path, monkeypatch):
    monkeypatch.delenv("KYODO_SECRET_KEY", raising=False)
    elsewhere = tmp_path / "data"
    elsewhere.mkdir()
    create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": f"sqlite:///{elsewhere / 'city.db'}"})
    assert _mode(elsewhere / "city.db") == 0o600


# -- the rate limit's store ------------------------------------------------------------


def _gunicorn(tmp_path: Path, workers: int, **env: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "KYODO_INSTANCE_PATH": str(tmp_path / "instance"), "KYODO_SECRET_KEY": KEY,
                   "KYODO_MATCH_MODE": "lexical", **env}
    environment.pop("WEB_CONCURRENCY", None)
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", str(workers), "--bind", "127.0.0.1:0", "web:create_app()"],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def test_two_gunicorn_workers_with_memory_counts_refuse_to_start(tmp_path):
    server = _gunicorn(tmp_path, 2, KYODO_RATELIMIT_STORAGE_URI="memory://")
    try:
        output, _ = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.communicate()
        pytest.fail("gunicorn -w 2 with memory:// counts started (each worker would count apart)")
    assert server.returncode != 0
    text = output.decode(errors="replace")
    line = ("KYODO_RATELIMIT_STORAGE_URI: memory:// counts in each process, and gunicorn runs 2 workers: "
            "set it to redis://host:6379 (one count for all, kept across restarts) or run one worker")
    assert line in text.splitlines(), text[-3000:]


def _listening_port(server: subprocess.Popen[bytes]) -> int:
    """The port gunicorn bound (:0), read from its log line."""
    assert server.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = server.stdout.readline().decode(errors="replace")
        if "Listening at: http://127.0.0.1:" in line:
            return int(line.rsplit(":", 1)[1].split()[0])
        if not line and server.poll() is not None:
            break
    pytest.fail("gunicorn did not start")


def test_two_gunicorn_workers_with_redis_counts_start_and_serve(tmp_path):
    server = _gunicorn(tmp_path, 2, KYODO_RATELIMIT_STORAGE_URI=REDIS)
    try:
        port = _listening_port(server)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                    assert response.status == 200
                    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.communicate(timeout=30)  # and its pipe closed


def test_a_store_that_cannot_keep_one_time_records_refuses_to_start(tmp_path):
    with pytest.raises(ValueError, match="^KYODO_RATELIMIT_STORAGE_URI: expected memory:// or redis://"):
        create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": KEY,
                    "RATELIMIT_STORAGE_URI": "mongodb://127.0.0.1:27017"})


def test_the_job_queues_sqlite_file_is_private(tmp_path):
    from web import create_app
    from web.jobs import build_jobs

    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "k" * 40, "MATCH_MODE": "lexical"})
    build_jobs(app, name="private-test")  # before huey opens its storage
    queue_file = tmp_path / "instance" / "jobs.sqlite3"
    assert queue_file.exists() and (queue_file.stat().st_mode & 0o777) == 0o600
