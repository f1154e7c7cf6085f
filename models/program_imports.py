"""Catalogue imports in stages: the rule that hides staged programs, the chunks
an import writes, and the one short step that makes them current.

An import (:class:`models.tables.ProgramImport`) writes its new programs as
``program`` rows tagged with its id, and its updates of existing programs as
:class:`models.tables.ProgramChange` rows, one chunk per transaction, so a
submission waits for one chunk at most (SQLite has one writer at a time).
:func:`publish_import` then flips it in one transaction: the import is
published (its rows become visible), the changes are applied, the newest
fiscal year is active, the event is written. A failed or interrupted import
is never published; :func:`discard_staged` deletes its rows in chunks.

Staged rows are hidden from every ORM query of Program (pages, API, matcher
input, counts, ``session.get``) by :func:`hide_staged_programs`, registered on
every Session: the rule is here once, not in each query. A query that must see
them passes ``execution_options(include_staged=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, delete, event, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import ORMExecuteState, with_loader_criteria
from sqlmodel import Session, col, select

from corpus import ProgramRecord
from corpus.programs import stable_id
from models.audit import record_event
from models.import_tables import FAILED, PUBLISHED, STAGING
from models.locks import rowcount_of
from models.programs import CONTENT_FIELDS, ImportReport, program_in_from_record
from models.tables import Program, ProgramChange, ProgramCreate, ProgramImport, utcnow

INCLUDE_STAGED = "include_staged"  # the execution option that shows staged rows
_IN_LIST = 500  # ids per IN (...) list: far under SQLite's and PostgreSQL's parameter limits


# -- what is visible ------------------------------------------------------------


def _unpublished_ids() -> Any:
    return sa_select(col(ProgramImport.id)).where(col(ProgramImport.status) != PUBLISHED)


def visible(program: Any = Program) -> ColumnElement[bool]:
    """A program row is seen when no import staged it or its import is published.

    Written as a filter no index serves (ids start at 1, so 0 is never in the
    list): the planner keeps the query's own index instead of walking every
    visible row through ``import_id``.
    """
    return func.coalesce(col(program.import_id), 0).not_in(_unpublished_ids())


@event.listens_for(Session, "do_orm_execute")
def hide_staged_programs(state: ORMExecuteState) -> None:
    """Add :func:`visible` to every ORM SELECT that reads Program (a refresh of
    a row already loaded is left alone)."""
    if not state.is_select or state.is_column_load or state.execution_options.get(INCLUDE_STAGED, False):
        return
    state.statement = state.statement.options(
        with_loader_criteria(Program, visible, include_aliases=True, track_closure_variables=False)
    )


# -- readable ids ---------------------------------------------------------------


def readable_id(fiscal_year: int, number: int) -> str:
    """The id of a program its file gave none, in the bundled catalogue's style
    (``H20-19``): the era's letter and year, a hyphen, the number.

    >>> readable_id(2026, 1), readable_id(2008, 19), readable_id(2019, 1000)
    ('R8-001', 'H20-019', 'R1-1000')
    """
    era = f"R{fiscal_year - 2018}" if fiscal_year >= 2019 else f"H{fiscal_year - 1988}"
    return f"{era}-{number:03d}"


def _next_numbers(taken: dict[int, set[str]]) -> dict[int, int]:
    """Per fiscal year, the number after the highest readable id already used."""
    numbers = {}
    for year, ids in taken.items():
        pattern = re.compile(re.escape(readable_id(year, 0).split("-")[0]) + r"-(\d+)")
        found = [int(m.group(1)) for m in map(pattern.fullmatch, ids) if m]
        numbers[year] = max(found, default=0) + 1
    return numbers


def with_readable_ids(*, session: Session, records: Sequence[ProgramRecord]) -> list[ProgramRecord]:
    """The records, those without an id of their own (``corpus.programs.stable_id``)
    given one: the id the same program (施策名 and 事業名) has in that fiscal year
    already, so importing twice changes nothing, else the next readable id of the
    year. The one place such ids are assigned.

    A new one takes the キーワード of the same program in the latest earlier
    year when the file has no キーワード column (as a program keyed by its id does).
    """
    pending = [r for r in records if r.fiscal_year is not None and r.id == stable_id(r.policy, r.name)]
    if not pending:
        return list(records)
    years = {r.fiscal_year for r in pending if r.fiscal_year is not None}
    known: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
    taken: dict[int, set[str]] = {year: set() for year in years}
    rows = session.execute(
        sa_select(col(Program.policy), col(Program.name), col(Program.fiscal_year), col(Program.external_id),
                  col(Program.keywords)).order_by(col(Program.fiscal_year).desc())
    )
    for policy, name, year, external_id, keywords in rows:
        known.setdefault((policy, name), []).append((year, external_id, keywords))
        if year in taken:
            taken[year].add(external_id)
    for record in records:
        if record.fiscal_year in taken:
            taken[record.fiscal_year].add(record.id)
    numbers = _next_numbers(taken)
    return [_with_id(r, known, numbers) if r in pending else r for r in records]


def _with_id(record: ProgramRecord, known: dict[tuple[str, str], list[tuple[int, str, str]]],
             numbers: dict[int, int]) -> ProgramRecord:
    year = record.fiscal_year
    assert year is not None
    stored = known.get((record.policy, record.name), [])
    same_year = next((external_id for y, external_id, _ in stored if y == year), None)
    if same_year is not None:
        return replace(record, id=same_year)
    new_id = readable_id(year, numbers[year])
    numbers[year] += 1
    earlier = next((keywords for y, _, keywords in stored if y < year), None)
    if record.keywords is None and earlier is not None:
        return replace(record, id=new_id, keywords=earlier)
    return replace(record, id=new_id)


# -- staging ----------------------------------------------------------------------


def open_import(*, session: Session, source_file: str = "", actor: str = "",
                fiscal_year: int | None = None) -> ProgramImport:
    """A queued import (flushed: it has its id), the file not read yet."""
    batch = ProgramImport(source_file=source_file[:500], actor=actor[:200], fiscal_year=fiscal_year)
    session.add(batch)
    session.flush()
    return batch


def begin_staging(*, session: Session, batch: ProgramImport, total: int, skipped: int = 0,
                  default_fiscal_year: int | None = None) -> None:
    """The file is read and valid: its ``total`` rows are about to be staged."""
    batch.status, batch.started_at = STAGING, utcnow()
    batch.rows_total, batch.rows_done, batch.skipped = total, 0, skipped
    batch.added = batch.updated = batch.unchanged = batch.deactivated = 0
    batch.default_fiscal_year, batch.fiscal_years = default_fiscal_year, []
    session.add(batch)
    session.flush()


def newest_year(*, session: Session, records: Iterable[ProgramRecord]) -> int:
    """The fiscal year that will be active once these records are published."""
    stored = session.exec(select(func.max(col(Program.fiscal_year)))).one() or 0
    return max([stored, *(r.fiscal_year or 0 for r in records)])


def _stored(session: Session, programs: Sequence[ProgramCreate]) -> dict[tuple[int, str], Program]:
    """The visible programs with the (fiscal year, id) of these rows."""
    by_year: dict[int, list[str]] = {}
    for p in programs:
        by_year.setdefault(p.fiscal_year, []).append(p.external_id)
    found = {}
    for year, ids in by_year.items():
        for start in range(0, len(ids), _IN_LIST):
            query = select(Program).where(col(Program.fiscal_year) == year,
                                          col(Program.external_id).in_(ids[start:start + _IN_LIST]))
            found.update({(p.fiscal_year, p.external_id): p for p in session.exec(query)})
    return found


def keyword_history(session: Session, external_ids: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
    """External id → its stored (fiscal year, keywords), newest year first."""
    history: dict[str, list[tuple[int, str]]] = {}
    ids = sorted(set(external_ids))
    for start in range(0, len(ids), _IN_LIST):
        rows = session.exec(
            select(col(Program.external_id), col(Program.fiscal_year), col(Program.keywords))
            .where(col(Program.external_id).in_(ids[start:start + _IN_LIST]))
            .order_by(col(Program.fiscal_year).desc())
        )
        for external_id, year, text in rows:
            history.setdefault(external_id, []).append((year, text))
    return history


def changes_of(program: Program, program_in: ProgramCreate, *, keep_keywords: bool) -> dict[str, Any]:
    """The fields a row of the file changes; without a キーワード column the
    coordinator's keywords stay."""
    fields = CONTENT_FIELDS if keep_keywords else (*CONTENT_FIELDS, "keywords")
    return {name: getattr(program_in, name) for name in fields if getattr(program, name) != getattr(program_in, name)}


def new_program(program_in: ProgramCreate, *, keep_keywords: bool, history: dict[str, list[tuple[int, str]]]) -> Program:
    """The row of a program new in its fiscal year; without a キーワード column it
    takes those of the same id in the latest earlier year."""
    program = Program.model_validate(program_in)
    if keep_keywords:
        program.keywords = next(
            (text for year, text in history.get(program_in.external_id, []) if year < program_in.fiscal_year), ""
        )
    return program


def stage_programs(*, session: Session, batch: ProgramImport, records: Sequence[ProgramRecord], newest: int) -> None:
    """Stage one chunk (flush; the caller commits it): new programs as hidden
    rows (active when of the ``newest`` year), changed ones as ProgramChange rows."""
    programs_in = [program_in_from_record(r, source_file=batch.source_file) for r in records]
    stored = _stored(session, programs_in)
    history = keyword_history(session, (p.external_id for p, r in zip(programs_in, records, strict=True)
                                         if r.keywords is None and (p.fiscal_year, p.external_id) not in stored))
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for record, program_in in zip(records, programs_in, strict=True):
        keep = record.keywords is None
        found = stored.get((program_in.fiscal_year, program_in.external_id))
        if found is None:
            program = new_program(program_in, keep_keywords=keep, history=history)
            program.import_id, program.active = batch.id, program.fiscal_year == newest
            added.append(program.model_dump(exclude={"id"}))
        elif changes_of(found, program_in, keep_keywords=keep):
            changed.append({"import_id": batch.id, "program_id": found.id, "keywords": None if keep else program_in.keywords,
                            **{name: getattr(program_in, name) for name in CONTENT_FIELDS}})
        else:
            batch.unchanged += 1
    batch.added, batch.updated = batch.added + len(added), batch.updated + len(changed)
    batch.rows_done += len(records)
    batch.fiscal_years = sorted({*batch.fiscal_years, *(p.fiscal_year for p in programs_in)})
    # Plain INSERTs of rows made beforehand: the write lock, taken by the first
    # statement, is held for the statements alone, not for the ORM's bookkeeping.
    for table, rows in ((Program, added), (ProgramChange, changed)):
        if rows:
            session.execute(insert(table), rows)
    session.add(batch)
    session.flush()


# -- the flip -----------------------------------------------------------------------


def publish_import(*, session: Session, batch: ProgramImport, newest: int | None = None) -> ImportReport:
    """Make a staged import current, with its event (flush; the calling command
    commits it as one short transaction): its rows visible, its changes applied,
    the newest fiscal year (``newest`` when the caller knows it) active and the
    older ones inactive."""
    batch.status, batch.finished_at = PUBLISHED, utcnow()
    session.add(batch)
    session.flush()
    _apply_changes(session, batch)
    batch.deactivated = activate_newest_year(session, newest)
    record_event(
        session=session, action="programs.import", entity="program", actor=batch.actor,
        detail={"source_file": batch.source_file, "import_id": batch.id, "added": batch.added,
                "updated": batch.updated, "unchanged": batch.unchanged, "fiscal_years": batch.fiscal_years},
    )
    session.add(batch)
    session.flush()
    return report_of(batch)


def _apply_changes(session: Session, batch: ProgramImport) -> None:
    """One UPDATE ... FROM program_change: the database sets the rows, not a
    loop of ORM objects (20,000 changed rows: 1.8 s that way, held in the flip)."""
    values: dict[str, Any] = {name: getattr(ProgramChange, name) for name in CONTENT_FIELDS}
    values["keywords"] = func.coalesce(col(ProgramChange.keywords), col(Program.keywords))
    values["source_file"], values["updated_at"] = batch.source_file, utcnow()
    session.execute(
        update(Program)
        .where(col(Program.id) == col(ProgramChange.program_id), col(ProgramChange.import_id) == batch.id)
        .values(values).execution_options(synchronize_session=False)
    )


def activate_newest_year(session: Session, newest: int | None = None) -> int:
    """Programs of the newest visible fiscal year active, older ones inactive
    (they keep their suggestions and decisions); how many were set inactive.
    Each UPDATE finds its few rows by (active, fiscal_year)."""
    if newest is None:
        newest = session.exec(select(func.max(col(Program.fiscal_year)))).one()
    if newest is None:
        return 0
    session.execute(
        update(Program)
        .where(col(Program.fiscal_year) == newest, col(Program.active).is_(False), visible())
        .values(active=True).execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(Program)
        .where(col(Program.fiscal_year) < newest, col(Program.active).is_(True), visible())
        .values(active=False).execution_options(synchronize_session=False)
    )
    return rowcount_of(result)


def report_of(batch: ProgramImport) -> ImportReport:
    return ImportReport(added=batch.added, updated=batch.updated, unchanged=batch.unchanged,
                        deactivated=batch.deactivated, fiscal_years=list(batch.fiscal_years))


def import_programs(*, session: Session, records: Sequence[ProgramRecord], source_file: str = "",
                    actor: str = "") -> ImportReport:
    """A small import in the caller's one transaction (the bundled catalogue at
    first use): the same stages, not committed."""
    batch = open_import(session=session, source_file=source_file, actor=actor)
    records = with_readable_ids(session=session, records=records)
    begin_staging(session=session, batch=batch, total=len(records))
    newest = newest_year(session=session, records=records)
    stage_programs(session=session, batch=batch, records=records, newest=newest)
    report = publish_import(session=session, batch=batch, newest=newest)
    clear_changes(session=session, import_id=batch.id or 0, limit=max(1, report.updated))
    return report


# -- failure ------------------------------------------------------------------------


def fail_import(*, session: Session, batch: ProgramImport, failure: str, error: str,
                problems: Sequence[dict[str, Any]] = ()) -> None:
    """Mark an import failed (flush): its staged rows stay hidden until deleted."""
    if batch.status == PUBLISHED:
        raise ValueError(f"import {batch.id} is published; it cannot fail")
    batch.status, batch.failure, batch.error = FAILED, failure, error[:2000]
    batch.problems, batch.finished_at = list(problems), utcnow()
    session.add(batch)
    session.flush()


def discard_staged(*, session: Session, import_id: int, limit: int = 2000) -> int:
    """Delete up to ``limit`` staged rows of an import that is not published
    (flush; commit each call: a short transaction); how many were deleted."""
    status = session.exec(select(ProgramImport.status).where(col(ProgramImport.id) == import_id)).first()
    if status == PUBLISHED:
        raise ValueError(f"import {import_id} is published; its programs are the catalogue")
    staged = sa_select(col(Program.id)).where(col(Program.import_id) == import_id).limit(limit)
    result = session.execute(
        delete(Program).where(col(Program.id).in_(staged))
        .execution_options(synchronize_session=False, **{INCLUDE_STAGED: True})
    )
    return rowcount_of(result) + clear_changes(session=session, import_id=import_id, limit=limit)


def clear_changes(*, session: Session, import_id: int, limit: int = 2000) -> int:
    """Delete up to ``limit`` ProgramChange rows of an import (applied or
    discarded; flush, the caller commits); how many were deleted."""
    part = sa_select(col(ProgramChange.id)).where(col(ProgramChange.import_id) == import_id).limit(limit)
    return rowcount_of(session.execute(delete(ProgramChange).where(col(ProgramChange.id).in_(part))))


def unfinished_imports(*, session: Session) -> list[ProgramImport]:
    """Imports left staging (their process died when nobody holds the import lock)."""
    return list(session.exec(select(ProgramImport).where(col(ProgramImport.status) == STAGING)))


def staged_count(*, session: Session, import_id: int) -> int:
    """Program rows an import has staged (published or not)."""
    query = select(func.count()).select_from(Program).where(col(Program.import_id) == import_id)
    return int(session.exec(query.execution_options(**{INCLUDE_STAGED: True})).one())


def recent_imports(*, session: Session, limit: int = 5) -> list[ProgramImport]:
    """The newest imports first, for the upload page."""
    return list(session.exec(select(ProgramImport).order_by(col(ProgramImport.id).desc()).limit(limit)))
