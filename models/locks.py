"""A lock for batch jobs that works the same on SQLite and PostgreSQL.

One row per job in ``batch_lock``. Taking it is one atomic UPDATE that only
succeeds when nobody holds it, when the holder's heartbeat is older than
``stale_after``, or when the holder is a dead process on this very host.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.tables import BatchLock, utcnow

DEFAULT_STALE_AFTER = timedelta(minutes=10)


class LockHeld(RuntimeError):
    """Another live process holds the lock."""

    def __init__(self, name: str, host: str, pid: int | None, since: object):
        self.host, self.pid = host, pid
        super().__init__(f"{name} is already running (pid {pid} on {host}, since {since})")


def rowcount_of(result: object) -> int:
    """Rows matched by an UPDATE or DELETE (Session.execute is typed as a plain Result)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class BatchLockHandle:
    """A held lock: refresh it with heartbeat(), give it back with release()."""

    engine: Engine
    name: str
    holder: str

    def heartbeat(self) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(BatchLock)
                .where(col(BatchLock.name) == self.name, col(BatchLock.holder) == self.holder)
                .values(heartbeat_at=utcnow())
            )
            session.commit()

    def release(self) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(BatchLock)
                .where(col(BatchLock.name) == self.name, col(BatchLock.holder) == self.holder)
                .values(holder=None, pid=None, heartbeat_at=None)
            )
            session.commit()


def _ensure_row(session: Session, name: str) -> BatchLock:
    row = session.get(BatchLock, name)
    if row is not None:
        return row
    try:
        session.execute(insert(BatchLock).values(name=name, host=""))
        session.commit()
    except IntegrityError:
        session.rollback()  # another process inserted it first
    row = session.get(BatchLock, name)
    assert row is not None
    return row


def acquire(engine: Engine, name: str, *, stale_after: timedelta = DEFAULT_STALE_AFTER) -> BatchLockHandle:
    """Take the lock ``name`` or raise :class:`LockHeld`."""
    holder = uuid.uuid4().hex
    host, pid = socket.gethostname(), os.getpid()
    now = utcnow()
    with Session(engine) as session:
        current = _ensure_row(session, name)
        free = or_(col(BatchLock.holder).is_(None), col(BatchLock.heartbeat_at) < now - stale_after)
        if current.holder is not None and current.host == host and current.pid and not pid_alive(current.pid):
            # The holder died on this host (SIGKILL, OOM): its lock is ours to take.
            free = or_(free, col(BatchLock.holder) == current.holder)
        result = session.execute(
            update(BatchLock)
            .where(col(BatchLock.name) == name, free)
            .values(holder=holder, host=host, pid=pid, acquired_at=now, heartbeat_at=now)
        )
        session.commit()
        if rowcount_of(result) != 1:
            session.expire_all()
            row = session.get(BatchLock, name)
            assert row is not None
            raise LockHeld(name, row.host, row.pid, row.acquired_at)
    return BatchLockHandle(engine, name, holder)


def is_free(engine: Engine, name: str, *, stale_after: timedelta = DEFAULT_STALE_AFTER) -> bool:
    """True when nobody live holds the lock (free, stale, or held by a dead local process)."""
    with Session(engine) as session:
        row = session.exec(select(BatchLock).where(col(BatchLock.name) == name)).first()
        if row is None or row.holder is None:
            return True
        if row.heartbeat_at is not None and row.heartbeat_at < utcnow() - stale_after:
            return True
        return row.host == socket.gethostname() and bool(row.pid) and not pid_alive(row.pid or 0)
