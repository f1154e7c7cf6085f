"""The database and the matching service of the web app: one engine per app,
built from app.config["DATABASE_URL"] on first use, one session per request on
g, and one :class:`office.service.MatchingService` per app."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlmodel import Session

from models.db import init_db, make_engine
from office.catalogue import recover_interrupted_imports
from office.rematch import recover_stale_runs
from office.service import MatchingService

EXTENSION = "kyodo_db"
MATCHING = "kyodo_matching"


class _State:
    """The app's engine, created and migrated once, on first use."""

    def __init__(self, url: str):
        self.url = url
        self.engine: Engine | None = None
        self.lock = threading.Lock()

    def get(self) -> Engine:
        with self.lock:
            if self.engine is None:
                engine = make_engine(self.url)
                init_db(engine)
                recover_stale_runs(engine=engine)
                recover_interrupted_imports(engine=engine)
                self.engine = engine
            return self.engine


def init_app(app: Flask) -> None:
    """Register the engine holder and the per-request session teardown."""
    app.extensions[EXTENSION] = _State(app.config["DATABASE_URL"])
    app.extensions[MATCHING] = matching_service(app.config)
    app.teardown_appcontext(close_session)


def matching_service(config: Any) -> MatchingService:
    """The matching service of these settings (MATCH_MODE, INDEX_PATH, TOP_K)."""
    return MatchingService(mode=config["MATCH_MODE"], index_path=config["INDEX_PATH"], top_k=config["TOP_K"])


def get_matching(app: Flask | None = None) -> MatchingService:
    """The app's matching service (its mode is resolved on first use)."""
    return (app or current_app).extensions[MATCHING]


def get_engine(app: Flask | None = None) -> Engine:
    """The app's engine: the database is created, upgraded and seeded on first use."""
    app = app or current_app
    return app.extensions[EXTENSION].get()


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = Session(get_engine(), expire_on_commit=False)
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def dispose(app: Flask) -> None:
    """Close the engine's pooled connections (tests, and before a fork)."""
    state: _State = app.extensions[EXTENSION]
    with state.lock:
        if state.engine is not None:
            state.engine.dispose()
            state.engine = None
