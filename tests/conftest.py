"""Shared fixtures: every database test runs twice, on SQLite (a file in
tmp_path) and on PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth).

Migrations run once per session, from the files on disk (nothing is kept
across sessions), not once per test:
- SQLite: a template file is built with ``init_db`` (schema at head, bundled
  catalogue loaded) at the first SQLite test, and copied into each test's
  tmp_path.
- PostgreSQL: one database per session, built the same way, whose tables are
  truncated before each test; the app's first use loads the catalogue again.
  Measured faster than ``CREATE DATABASE ... TEMPLATE`` per test (about 0.2 s
  with the reseeding, against 0.55 s with the drop). If a test left that
  database unusable (a table dropped, a lock held) it is built again.

``empty_database_url`` gives a database without any table, for a test that
migrates from scratch itself.

The PostgreSQL databases of a session share a unique prefix and are all
dropped at its end, failed or not. PostgreSQL is not optional: if it does not
answer, the PostgreSQL tests fail and say why.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel

from models.db import init_db, make_engine
from web import create_app
from web.db import dispose, get_engine

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", "postgresql"]
SQLITE_NAME = "kyodo.sqlite3"


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required for the tests and does not answer at {POSTGRES_SERVER}: "
            f"{str(exc).strip().splitlines()[0]}. Start it (see .ci/run).",
            pytrace=False,
        )


def _pg_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _migrate(url: str) -> None:
    """Schema at head and the bundled catalogue, as the app's first use leaves it."""
    engine = make_engine(url)
    try:
        init_db(engine)
        if url.startswith("sqlite"):  # everything in the main file, for the copies
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def lexical_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """MATCH_MODE defaults to auto, which is semantic with the extra installed:
    tests run lexical (as the app, the commands and their subprocesses read
    the environment) unless they ask for semantic (tests/test_semantic_store.py)."""
    monkeypatch.setenv("KYODO_MATCH_MODE", "lexical")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head and seeded, built once per session."""
    path = tmp_path_factory.mktemp("sqlite-template") / SQLITE_NAME
    _migrate(f"sqlite:///{path}")
    for suffix in ("-wal", "-shm"):  # the copies take the main file only
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


class _Postgres:
    """The session's PostgreSQL databases, all named ``{prefix}_*``: the
    working database of the session and the empty ones some tests ask for."""

    def __init__(self, admin: psycopg.Connection):
        self.admin = admin
        self.prefix = f"kyodo_test_{uuid.uuid4().hex[:12]}"
        self.working = f"{self.prefix}_db"
        self.count = 0

    def create(self, name: str | None = None) -> str:
        if name is None:
            self.count += 1
            name = f"{self.prefix}_{self.count}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop(self, name: str) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        names = self.admin.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (f"{self.prefix}_",)
        ).fetchall()
        for (name,) in names:
            self.drop(name)

    def build_working(self) -> str:
        """(Re)creates the working database, migrated to head and seeded."""
        self.drop(self.working)
        url = _pg_url(self.create(self.working))
        _migrate(url)
        return url


@pytest.fixture(scope="session")
def postgres() -> Iterator[_Postgres]:
    """The session's PostgreSQL server side; every database of the session is
    dropped at the end, whatever happened."""
    admin = _admin()
    pg = _Postgres(admin)
    try:
        yield pg
    finally:
        try:
            pg.drop_all()
        finally:
            admin.close()


@pytest.fixture(scope="session")
def postgres_url(postgres: _Postgres) -> str:
    """The session's working PostgreSQL database, migrated once."""
    return postgres.build_working()


def _truncate(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    try:
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture
def postgres_database(postgres: _Postgres) -> Iterator[Callable[[], str]]:
    """Makes empty databases of this test (no table), dropped after it."""
    made: list[str] = []

    def make() -> str:
        made.append(postgres.create())
        return _pg_url(made[-1])

    yield make
    for name in made:
        postgres.drop(name)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at head: on SQLite a copy of the seeded template; on
    PostgreSQL the session's database with its tables emptied (the app's first
    use loads the bundled catalogue again)."""
    if request.param == "sqlite":
        path = tmp_path / SQLITE_NAME
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    try:
        _truncate(url)
    except SQLAlchemyError:  # a test left its schema broken, or a connection holding a lock
        request.getfixturevalue("postgres").build_working()
    return url


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of this test without any table (not migrated, not seeded)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    return request.getfixturevalue("postgres_database")()


@pytest.fixture
def app(database_url: str, tmp_path):
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test" * 8,
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
        }
    )
    yield app
    dispose(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app) -> CliRunner:
    """Invokes the ``kyodo`` commands (web.cli.cli) on the test app's database."""
    return CliRunner(
        env={
            "KYODO_DATABASE_URL": app.config["DATABASE_URL"],
            "KYODO_INSTANCE_PATH": app.instance_path,
        }
    )


@pytest.fixture
def engine(app):
    """The app's engine: migrated and seeded with the bundled catalogue."""
    return get_engine(app)


@pytest.fixture
def session(engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session
