"""The department's page (/departments/<name>): its programs, and the proposals
matched or paired with them, one page of each at a time whatever their number
(a fixed number of queries; 200,000 programs of one department are no longer
one page of 13 MB).

A program belongs to a department when the department is one of the names of
its 担当課 cell as :func:`corpus.programs.split_departments` splits it; the
SQL condition below is that same rule (tests/web/test_department_pages.py
compares the two on generated cells), so the pages can count and slice in the
database. (Nested REPLACE calls, one per separator, overflow SQLite's parser
stack inside the pairs' subqueries: hence a pattern.)
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, exists, false, func
from sqlmodel import Session, col, select

from corpus.programs import split_departments
from models.decisions import current_decisions
from models.pages import Page, clamp_page, contains_exactly, paginate
from models.review import PairRow, programs_by_id, proposals_by_id
from models.suggestions import COMPARABLE_SCORE, latest_run_id, visible
from models.tables import Decision, Program, Suggestion


@cache
def separators() -> tuple[str, ...]:
    """Every character split_departments splits on, read from the rule itself
    (whitespace and 、,，・/／; all in the Basic Multilingual Plane)."""
    return tuple(c for c in map(chr, range(0x10000)) if split_departments(f"a{c}b") == ("a", "b"))


def name_pattern(department: str) -> str:
    """A regular expression read alike by Python's re (SQLite's REGEXP, as
    SQLAlchemy registers it) and PostgreSQL's ``~``: the name, whole, between
    separators or the cell's ends. No separator needs escaping inside brackets."""
    around = "[" + "".join(separators()) + "]"
    return f"(^|{around}){re.escape(department)}($|{around})"


def in_department(session: Session, department: str) -> ColumnElement[bool]:
    """SQL condition: the program's 担当課 names ``department`` (as one of its names)."""
    if split_departments(department) != (department,):  # empty, or itself several names: no program
        return false()
    # Cheap tests first: a cell that is the name alone (the usual case) is never
    # matched against the pattern, nor one not containing the name at all.
    cell = col(Program.department)
    named = contains_exactly(session, cell, department) & cell.regexp_match(name_pattern(department))
    return (cell == department) | named


def department_programs_page(*, session: Session, department: str, page: int, page_size: int) -> Page:
    """One page of the department's programs, newest fiscal year first."""
    order = [col(Program.fiscal_year).desc(), col(Program.id)]
    return paginate(session=session, model=Program, conditions=[in_department(session, department)],
                    order_by=order, page=page, page_size=page_size)


def _count(session: Session, model: Any, conditions: list[Any]) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(*conditions)).one())


def department_pairs_page(*, session: Session, department: str, page: int, page_size: int) -> Page:
    """One page of the pairs of the department's programs (rows: PairRow): the
    published suggestions, best comparable score first, then the pairs decided
    without one (paired by hand, or no longer suggested), newest first; each
    with its current decision."""
    programs = select(col(Program.id)).where(in_department(session, department))
    latest = latest_run_id(session=session)
    matched = [col(Suggestion.program_id).in_(programs), visible(latest)]
    newest = (
        select(func.max(col(Decision.id)))
        .where(col(Decision.program_id).in_(programs))
        .group_by(col(Decision.proposal_id), col(Decision.program_id))
    )
    suggested = exists().where(
        col(Suggestion.proposal_id) == col(Decision.proposal_id),
        col(Suggestion.program_id) == col(Decision.program_id),
        visible(latest),
    )
    decided_only = [col(Decision.id).in_(newest), ~suggested]
    n_matched = _count(session, Suggestion, matched)
    total = n_matched + _count(session, Decision, decided_only)
    number = clamp_page(page, total, page_size)
    start = (number - 1) * page_size
    suggestions = list(session.exec(
        select(Suggestion).where(*matched).order_by(COMPARABLE_SCORE.desc(), col(Suggestion.id))
        .offset(start).limit(page_size)
    )) if start < n_matched else []
    decided: list[Decision] = []
    if len(suggestions) < page_size:
        decided = list(session.exec(
            select(Decision).where(*decided_only).order_by(col(Decision.id).desc())
            .offset(max(0, start - n_matched)).limit(page_size - len(suggestions))
        ))
    return Page(_pair_rows(session, suggestions, decided), number, page_size, total)


def _pair_rows(session: Session, suggestions: list[Suggestion], decided: list[Decision]) -> list[PairRow]:
    pairs = [(s.proposal_id, s.program_id) for s in suggestions] + [(d.proposal_id, d.program_id) for d in decided]
    current = current_decisions(
        session=session, proposal_ids={a for a, _ in pairs}, program_ids={b for _, b in pairs}
    ) if suggestions else {}
    current.update({(d.proposal_id, d.program_id): d for d in decided})
    proposals = proposals_by_id(session=session, ids={a for a, _ in pairs})
    programs = programs_by_id(session=session, ids={b for _, b in pairs})
    by_pair: dict[tuple[int, int], Suggestion | None] = {(s.proposal_id, s.program_id): s for s in suggestions}
    return [
        PairRow(proposals[a], programs[b], by_pair.get((a, b)), current.get((a, b)))
        for a, b in pairs
        if a in proposals and b in programs
    ]
