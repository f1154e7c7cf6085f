"""Engine, migrations and first-use seeding. No Flask here: the web app and
the commands both call these with a URL from their settings."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func
from sqlmodel import Session, select

import models.program_imports  # noqa: F401  (registers the rule that hides staged programs on every Session)
from models.tables import Program

MIGRATIONS = Path(__file__).parent / "migrations"
BUNDLED_FISCAL_YEAR = 2008  # the seed documents are the 平成20年度 plan
# How long a SQLite write waits for the one writer before "database is locked".
# Measured (benchmarks/bench_import_contention.py, docs/benchmarks.md): the
# longest hold of the write lock is a catalogue import's chunk or flip, about
# 0.1 s at 200,000 rows, and a rematch's clean-up, 0.15 s at 20,000 proposals
# (about 0.8 s at 100,000). Ten times the largest, with room for a slow disk's
# fsync, and well under the 30 s a gunicorn worker may take for a request.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # On every new connection (the engine's "connect" event): pragmas are per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL: readers keep reading the published run while the rematch writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    """Alembic's configuration for the package's migrations, no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def init_db(engine: Engine) -> None:
    """Upgrade the schema to head, load the bundled corpus if there are no
    programs, and make sure every department the catalogue names exists."""
    upgrade(engine)
    with Session(engine) as session:
        seed_bundled_programs(session=session)
        seed_departments(session=session)


def seed_departments(*, session: Session) -> int:
    """A Department row, without e-mail, for each 担当課 a program names."""
    from corpus.programs import split_departments
    from models.workflow import ensure_departments

    cells = session.exec(select(Program.department).distinct()).all()
    added = ensure_departments(session=session, names=[n for c in cells for n in split_departments(c or "")])
    if added:
        session.commit()  # first-use setup, as above
    return added


def seed_bundled_programs(*, session: Session) -> int:
    """Load the bundled catalogue (fiscal year 2008) into an empty program table."""
    # Staged rows count too: a catalogue being imported is not an empty table.
    if session.exec(select(func.count()).select_from(Program).execution_options(include_staged=True)).one():
        return 0
    from corpus import BUNDLED_PROGRAMS, load_programs
    from models.program_imports import import_programs

    records = load_programs(BUNDLED_PROGRAMS, fiscal_year=BUNDLED_FISCAL_YEAR)
    report = import_programs(session=session, records=records, source_file="bundled:programs.csv")
    session.commit()  # first-use setup, not a coordinator's change: no command of its own
    return report.added


def engine_of(session: Session) -> Engine:
    """The engine a session is bound to (batch helpers open sessions of their own)."""
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine
