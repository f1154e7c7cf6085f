"""The coordinator's changes to the catalogue: a city's spreadsheet imported,
a program's キーワード set, a keywords sheet applied. One command each: one
transaction with its event (written by the models function it calls)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from corpus import ProgramRecord, split_departments
from models.programs import (
    ImportReport,
    KeywordsReport,
    import_keywords,
    import_programs,
    set_keywords,
)
from models.tables import Program
from models.workflow import ensure_departments
from office.commands import NOBODY, Actor


def import_catalogue(
    *, session: Session, records: Sequence[ProgramRecord], source_file: str = "", actor: Actor = NOBODY,
) -> ImportReport:
    """Upsert the programs of a city's file, all in one transaction; the newest fiscal year is active.

    A 担当課 the file names for the first time becomes a department (without
    e-mail) in the same transaction, so the departments' list never misses one.
    """
    report = import_programs(session=session, records=records, source_file=source_file, actor=actor.name)
    ensure_departments(session=session, names=[n for r in records for n in split_departments(r.department)])
    session.commit()
    return report


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
