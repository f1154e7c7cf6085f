"""The coordinator's changes to the catalogue: a city's spreadsheet imported,
a program's キーワード set, a keywords sheet applied. One command each: one
transaction with its event (written by the models function it calls).

A city's file is imported in stages (:mod:`models.program_imports`): read and
checked whole first (a bad row anywhere imports nothing), then written in
chunks of :data:`CHUNK_ROWS` rows, each its own short transaction, and made
current by :func:`publish`, the one command that commits the flip with its
event. A submission waits for one chunk at most, never for the whole file. A
failed or interrupted import is deleted, chunk by chunk, and the previous
catalogue stays current. One import runs at a time (:data:`IMPORT_LOCK`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from corpus import FileFormatError, ProgramRecord, load_programs_report, split_departments
from corpus.files import DEFAULT_LIMITS, ReadLimits
from models.import_tables import BAD_ROWS, ERROR, FILE_UNREADABLE, FINISHED, INTERRUPTED, NO_ROWS
from models.locks import BatchLockHandle, LockHeld, acquire
from models.program_imports import (
    begin_staging,
    clear_changes,
    discard_staged,
    fail_import,
    newest_year,
    open_import,
    publish_import,
    stage_programs,
    unfinished_imports,
    with_readable_ids,
)
from models.programs import ImportReport, KeywordsReport, import_keywords, set_keywords
from models.tables import Program, ProgramImport
from models.workflow import ensure_departments
from office.commands import NOBODY, Actor

log = logging.getLogger("kyodo.catalogue")

IMPORT_LOCK = "programs-import"
# Rows per staging transaction. Measured on SQLite (benchmarks/bench_import_contention.py):
# a chunk of 500 realistic rows holds the write lock for about 20-40 ms, so a
# submission arriving meanwhile waits that long; larger chunks save little time.
CHUNK_ROWS = 500
DISCARD_ROWS = 2_000  # staged rows deleted per transaction after a failure
HEARTBEAT_SECONDS = 30.0  # the import lock's heartbeat (stale after 10 minutes)


@dataclass(frozen=True)
class ImportFile:
    """The file an import reads and how: the 年度 of every row (else its column,
    else ``default_fiscal_year``), the readers' limits, and whether invalid rows
    are left out (the command's --skip-invalid) rather than refusing the file."""

    path: Path
    fiscal_year: int | None = None
    default_fiscal_year: int | None = None
    limits: ReadLimits = DEFAULT_LIMITS
    skip_invalid: bool = False


@dataclass
class _Refused(Exception):
    """A file that imports nothing, with the reason and each bad row."""

    failure: str
    error: str
    problems: list[dict[str, Any]] = field(default_factory=list)


def _problem(error: FileFormatError) -> dict[str, Any]:
    return {"line": error.line, "message": error.message, "ja": error.ja}


def start_import(*, session: Session, source_file: str, actor: Actor = NOBODY,
                 fiscal_year: int | None = None) -> ProgramImport:
    """Record an import to run (:func:`run_import`, now or in the worker) and commit."""
    batch = open_import(session=session, source_file=source_file, actor=actor.name, fiscal_year=fiscal_year)
    session.commit()
    return batch


def run_import(
    *, engine: Engine, import_id: int, file: ImportFile, chunk_rows: int = CHUNK_ROWS,
    after_chunk: Callable[[int, int], None] | None = None,
) -> ProgramImport:
    """Read, stage and publish the import ``import_id``; returns it published or failed.

    Raises :class:`models.locks.LockHeld` while another import runs. Run again
    after its process died, it starts over. ``after_chunk(done, total)`` is
    called after each committed chunk; if it raises (Ctrl-C in the command),
    the import fails as any other and the exception goes on.
    """
    lock = acquire(engine, IMPORT_LOCK)
    try:
        with Session(engine, expire_on_commit=False) as session:
            batch = session.get(ProgramImport, import_id)
            if batch is None:
                raise LookupError(f"no program import {import_id}")
            if batch.status in FINISHED:
                return batch
            _discard_unfinished(session, keep=import_id)
            try:
                _stage_and_publish(session, batch, file, chunk_rows, _Beat(lock), after_chunk)
            except _Refused as refused:
                session.rollback()
                _fail(session, batch, refused)
            except BaseException as exc:  # a bug, the database, or Ctrl-C: nothing is published
                session.rollback()
                if isinstance(exc, Exception):
                    log.exception("catalogue: import %s of %s failed", import_id, batch.source_file)
                _fail(session, batch, _Refused(ERROR, f"{type(exc).__name__}: {exc}"))
                if not isinstance(exc, Exception):
                    raise
            return batch
    finally:
        lock.release()


class _Beat:
    """The import lock's heartbeat, refreshed at most every HEARTBEAT_SECONDS
    (each refresh is a write of its own)."""

    def __init__(self, lock: BatchLockHandle):
        self.lock, self.at = lock, time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.at >= HEARTBEAT_SECONDS:
            self.lock.heartbeat()
            self.at = time.monotonic()


def _read(file: ImportFile) -> tuple[list[ProgramRecord], int, bool]:
    """The valid records, the number of invalid rows left out, and whether a row took the default 年度."""
    try:
        result = load_programs_report(file.path, fiscal_year=file.fiscal_year,
                                      default_fiscal_year=file.default_fiscal_year, limits=file.limits)
    except FileFormatError as exc:
        raise _Refused(FILE_UNREADABLE, str(exc), [_problem(exc)]) from exc
    if result.errors and not file.skip_invalid:
        raise _Refused(BAD_ROWS, f"{len(result.errors)} invalid rows", [_problem(e) for e in result.errors])
    if not result.programs:
        raise _Refused(NO_ROWS, "no programs in the file")
    return result.programs, len(result.errors), result.defaulted


def _stage_and_publish(
    session: Session, batch: ProgramImport, file: ImportFile, chunk_rows: int, beat: _Beat,
    after_chunk: Callable[[int, int], None] | None,
) -> None:
    records, skipped, defaulted = _read(file)
    records = with_readable_ids(session=session, records=records)
    newest = newest_year(session=session, records=records)
    begin_staging(session=session, batch=batch, total=len(records), skipped=skipped,
                  default_fiscal_year=file.default_fiscal_year if defaulted else None)
    session.commit()
    # The file's records live until the end: kept out of the collector's full
    # passes, which otherwise ran inside a chunk's transaction (0.3 s at 200,000 rows).
    gc.freeze()
    try:
        for start in range(0, len(records), chunk_rows):
            stage_programs(session=session, batch=batch, records=records[start:start + chunk_rows], newest=newest)
            session.commit()
            beat()
            if after_chunk is not None:
                after_chunk(batch.rows_done, batch.rows_total)
        publish(session=session, batch=batch, records=records, newest=newest)
    finally:
        gc.unfreeze()


def publish(*, session: Session, batch: ProgramImport, records: Sequence[ProgramRecord],
            newest: int | None = None) -> ImportReport:
    """Make a staged import the current catalogue: one short transaction with its event.

    A 担当課 the file names for the first time becomes a department (without
    e-mail) in the same transaction, so the departments' list never misses one.
    """
    names = sorted({n for r in records for n in split_departments(r.department)})  # before the lock is taken
    report = publish_import(session=session, batch=batch, newest=newest)
    for start in range(0, len(names), 500):
        ensure_departments(session=session, names=names[start:start + 500])
    session.commit()
    while clear_changes(session=session, import_id=batch.id or 0, limit=DISCARD_ROWS):  # applied: after the flip
        session.commit()
    session.commit()
    return report


def _fail(session: Session, batch: ProgramImport, refused: _Refused) -> None:
    """Record why nothing was imported, then delete what was staged, in short transactions."""
    fail_import(session=session, batch=batch, failure=refused.failure, error=refused.error,
                problems=refused.problems)
    session.commit()
    _discard(session, batch.id or 0)


def _discard(session: Session, import_id: int) -> None:
    while discard_staged(session=session, import_id=import_id, limit=DISCARD_ROWS):
        session.commit()
    session.commit()


def _discard_unfinished(session: Session, *, keep: int | None = None) -> int:
    """With the import lock held, imports left staging were interrupted (their
    process died): fail and delete them; ``keep``, run again, only loses its rows."""
    found = 0
    for batch in unfinished_imports(session=session):
        if batch.id != keep:
            found += 1
            fail_import(session=session, batch=batch, failure=INTERRUPTED,
                        error="interrupted: its process ended before the import was published")
            session.commit()
        _discard(session, batch.id or 0)
    return found


def recover_interrupted_imports(*, engine: Engine) -> int:
    """At start: fail and delete the imports whose process died while staging
    (none while another process holds the import lock); how many there were."""
    try:
        lock = acquire(engine, IMPORT_LOCK)
    except LockHeld:
        return 0
    try:
        with Session(engine, expire_on_commit=False) as session:
            return _discard_unfinished(session)
    finally:
        lock.release()


def fail_unqueued(*, session: Session, batch: ProgramImport, error: str) -> None:
    """An import that could not be handed to the worker (the queue is down): failed, nothing staged."""
    fail_import(session=session, batch=batch, failure=ERROR, error=error)
    session.commit()


def import_catalogue(
    *, engine: Engine, file: ImportFile, source_file: str = "", actor: Actor = NOBODY,
    after_chunk: Callable[[int, int], None] | None = None,
) -> ProgramImport:
    """Import a file now, in this process (the command, a small upload): start and run it."""
    with Session(engine, expire_on_commit=False) as session:
        batch = start_import(session=session, source_file=source_file or file.path.name, actor=actor,
                             fiscal_year=file.fiscal_year)
    return run_import(engine=engine, import_id=batch.id or 0, file=file, after_chunk=after_chunk)


def set_program_keywords(*, session: Session, program: Program, keywords: str, actor: Actor = NOBODY) -> bool:
    """Set one program's キーワード; False (and nothing written) when unchanged.

    The matcher reads them from the next rematch on: the published run's
    index stays as it was, so the suggestions shown keep their reasons.
    """
    changed = set_keywords(session=session, program=program, keywords=keywords, actor=actor.name)
    if changed:
        session.commit()
    return changed


def import_program_keywords(
    *, session: Session, keywords: dict[str, str], fiscal_year: int | None = None, actor: Actor = NOBODY,
) -> KeywordsReport:
    """Apply a keywords sheet (id → キーワード) to one fiscal year, all or nothing
    (:class:`models.programs.UnknownProgramIds` changes nothing)."""
    report = import_keywords(session=session, keywords=keywords, fiscal_year=fiscal_year, actor=actor.name)
    session.commit()
    return report
