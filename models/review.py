"""Read queries of the coordinator console: a proposal with its suggestions,
outcome and decisions; the catalogue search; program and department pages.

Each page is a fixed number of queries, whatever the number of rows (no N+1).
No Flask here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from corpus.programs import split_departments
from models.decisions import current_decisions, decision_history, is_standing
from models.pages import Page, like, paginate
from models.suggestions import (
    COMPARABLE_SCORE,
    latest_run,
    latest_run_id,
    outcomes_for,
    suggestions_for,
    visible,
)
from models.tables import Decision, MatchOutcome, MatchRun, Program, Proposal, Suggestion


def _by_id(session: Session, model: Any, ids: Iterable[int]) -> dict[int, Any]:
    """Rows of ``model`` with these ids, in one IN query."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {row.id: row for row in session.exec(select(model).where(col(model.id).in_(wanted)))}


def programs_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, Program]:
    return _by_id(session, Program, ids)


def proposals_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, Proposal]:
    return _by_id(session, Proposal, ids)


def departments(*, session: Session) -> list[str]:
    """Every department (担当課) named by a program, split and sorted."""
    names: set[str] = set()
    for cell in session.exec(select(Program.department).distinct()).all():
        names.update(split_departments(cell or ""))
    return sorted(names)


# -- one proposal -------------------------------------------------------------------


@dataclass
class ProposalView:
    proposal: Proposal
    suggestions: list[Suggestion]
    programs: dict[int, Program]
    current: dict[int, Decision]  # program id → current standing decision
    history: list[Decision]
    last_run: MatchRun | None
    hand_paired: list[int] = field(default_factory=list)  # decided programs not suggested
    # The accepted proposals the suggestions resemble (exemplar_proposal_id → proposal).
    exemplars: dict[int, Proposal] = field(default_factory=dict)
    outcome: MatchOutcome | None = None  # the matcher's no_match verdict and best scores


def proposal_view(*, session: Session, proposal_id: int) -> ProposalView | None:
    """The proposal page: suggestions, their programs, decisions and history."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        return None
    run = latest_run(session=session)
    run_id = run.id if run is not None and run.id is not None else 0
    suggestions = suggestions_for(session=session, proposal_ids=[proposal_id], run_id=run_id)[proposal_id]
    history = decision_history(session=session, proposal_id=proposal_id)
    latest: dict[int, Decision] = {d.program_id: d for d in history}  # history is oldest first
    current = {pid: d for pid, d in latest.items() if is_standing(d)}
    suggested = {s.program_id for s in suggestions}
    exemplar_ids = {s.exemplar_proposal_id for s in suggestions if s.exemplar_proposal_id is not None}
    return ProposalView(
        proposal=proposal,
        suggestions=suggestions,
        # Every program of the history too: an undone hand pairing keeps its name and link.
        programs=programs_by_id(session=session, ids=suggested | set(latest)),
        current=current,
        history=list(reversed(history)),
        last_run=run,
        hand_paired=[pid for pid in current if pid not in suggested],
        exemplars=proposals_by_id(session=session, ids=exemplar_ids),
        outcome=outcomes_for(session=session, proposal_ids=[proposal_id], run_id=run_id).get(proposal_id),
    )


# -- the catalogue ------------------------------------------------------------------------


def programs_without_keywords(*, session: Session) -> int:
    """How many active programs have no coordinator keywords yet."""
    return int(
        session.exec(
            select(func.count()).select_from(Program).where(col(Program.active).is_(True), col(Program.keywords) == "")
        ).one()
    )


SEARCHED_COLUMNS = ("external_id", "name", "purpose", "activities", "department", "policy", "keywords")


def search_programs(
    *, session: Session, q: str = "", department: str = "", active_only: bool = False,
    page: int = 1, page_size: int = 25,
) -> Page:
    """Programs whose text or department contains ``q`` (all when empty), catalogue order."""
    conditions: list[Any] = []
    if q:
        pattern = like(q)
        conditions.append(or_(*[col(getattr(Program, name)).like(pattern, escape="\\") for name in SEARCHED_COLUMNS]))
    if department:
        conditions.append(col(Program.department).like(like(department), escape="\\"))
    if active_only:
        conditions.append(col(Program.active).is_(True))
    order = [col(Program.active).desc(), col(Program.fiscal_year).desc(), col(Program.id)]
    return paginate(session=session, model=Program, conditions=conditions, order_by=order, page=page,
                    page_size=page_size)


# -- program and department pages -------------------------------------------------------


@dataclass
class PairRow:
    proposal: Proposal
    program: Program
    suggestion: Suggestion | None
    decision: Decision | None


def pairs_for_programs(*, session: Session, program_ids: list[int], limit: int = 500) -> list[PairRow]:
    """Proposals suggested for or decided on these programs, with the current decision."""
    if not program_ids:
        return []
    suggestions = list(
        session.exec(
            select(Suggestion)
            .where(col(Suggestion.program_id).in_(program_ids), visible(latest_run_id(session=session)))
            .order_by(COMPARABLE_SCORE.desc())
            .limit(limit)
        )
    )
    decisions = current_decisions(session=session, program_ids=program_ids, limit=limit)
    keys = [(s.proposal_id, s.program_id) for s in suggestions]
    keys += [k for k in decisions if k not in set(keys)]
    proposals = proposals_by_id(session=session, ids={k[0] for k in keys})
    programs = programs_by_id(session=session, ids=program_ids)
    by_pair = {(s.proposal_id, s.program_id): s for s in suggestions}
    return [
        PairRow(proposals[a], programs[b], by_pair.get((a, b)), decisions.get((a, b)))
        for a, b in keys
        if a in proposals and b in programs
    ]


def department_programs(*, session: Session, department: str) -> list[Program]:
    """Programs whose 担当課 names this department (as one of its names)."""
    candidates = session.exec(
        select(Program)
        .where(col(Program.department).like(like(department), escape="\\"))
        .order_by(col(Program.fiscal_year).desc(), col(Program.id))
    )
    return [p for p in candidates if department in split_departments(p.department)]


def program_by_reference(*, session: Session, reference: str) -> Program | None:
    """A program by its internal number (``12``) or the catalogue's id as shown
    (``H20-19``: the newest fiscal year's, an active one first)."""
    reference = reference.strip()
    if reference.isdigit() and len(reference) < 10:
        return session.get(Program, int(reference))
    query = (
        select(Program).where(col(Program.external_id) == reference)
        .order_by(col(Program.active).desc(), col(Program.fiscal_year).desc())
    )
    return session.exec(query).first()
