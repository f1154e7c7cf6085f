"""Shared fixtures: every database test runs twice, on SQLite (a file in
tmp_path) and on PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth).

The PostgreSQL database is created once per test session under a unique name
and dropped at the end; each test starts from empty tables (truncated), with
the bundled catalogue loaded again on first use. PostgreSQL is not optional:
if it does not answer, the PostgreSQL tests fail and say why.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import Session, SQLModel

from models.db import make_engine, upgrade
from web import create_app
from web.db import dispose, get_engine

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ["sqlite", "postgresql"]


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required for the tests and does not answer at {POSTGRES_SERVER}: "
            f"{str(exc).strip().splitlines()[0]}. Start it (see .ci/run).",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def lexical_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """MATCH_MODE defaults to auto, which is semantic with the extra installed:
    tests run lexical (as the app, the commands and their subprocesses read
    the environment) unless they ask for semantic (tests/test_semantic_store.py)."""
    monkeypatch.setenv("KYODO_MATCH_MODE", "lexical")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test session, migrated to head, dropped at the end."""
    name = f"kyodo_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database (no tables on SQLite; empty tables on PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kyodo.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    _truncate(url)
    return url


@pytest.fixture
def app(database_url: str, tmp_path):
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test",
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
