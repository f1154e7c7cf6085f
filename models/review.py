"""Read queries of the coordinator console: the review queue, a proposal with
its suggestions and decisions, program and department pages, the dashboard.

Each page is a fixed number of queries, whatever the number of rows (no N+1):
the rows of a page are fetched first, then their suggestions, programs and
decisions in one ``IN`` query each. No Flask here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Integer, case, exists, func, or_
from sqlmodel import Session, col, select

from models.audit import record_event
from models.decisions import current_decisions, decision_history, record_decision
from models.labels import ProposalStatus, Verdict
from models.matching import latest_run, suggestions_for, visible
from models.tables import (
    AuditEvent,
    Decision,
    DecisionCreate,
    MatchRun,
    Program,
    Proposal,
    Suggestion,
    utcnow,
)

JST = timezone(timedelta(hours=9), "JST")
SORTS = ("newest", "oldest", "score", "title")


# -- the review queue ------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilters:
    """What the queue's filter form asks for; None means no filter."""

    status: str | None = None
    department: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    new_only: bool = False
    reviewed: bool | None = None
    q: str | None = None
    sort: str = "newest"


@dataclass
class QueueRow:
    proposal: Proposal
    best_score: float | None
    suggestions: list[Suggestion]
    decided: dict[int, Decision]  # program id → current decision
    is_new: bool


@dataclass
class Page:
    rows: list[Any]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


def clamp_page(page: int, total: int, page_size: int) -> int:
    """``page`` within 1 … the last page of ``total`` rows (an empty list has one page)."""
    return min(max(1, page), max(1, math.ceil(total / page_size)))


@dataclass
class QueueResult:
    page: Page
    programs: dict[int, Program]
    last_run: MatchRun | None


def _latest_run_id(session: Session) -> int:
    run = latest_run(session=session)
    return int(run.id) if run is not None and run.id is not None else 0


# The score shown and compared across proposals: the TF-IDF cosine. A semantic
# run's ``score`` is a fused z-score that only ranks one proposal's programs;
# it keeps the cosine in ``lexical_score`` (None in lexical mode).
COMPARABLE_SCORE = func.coalesce(col(Suggestion.lexical_score), col(Suggestion.score))


def comparable_score(suggestion: Suggestion) -> float:
    """A suggestion's score on the 0–1 scale of the TF-IDF cosine (see COMPARABLE_SCORE)."""
    return suggestion.score if suggestion.lexical_score is None else suggestion.lexical_score


def _best_scores(run_id: int) -> Any:
    """Subquery: proposal_id, best visible score, whether any visible pair is new.

    Two plain aggregates, the latest run's rows (by the run index) and the
    online rows, the online one winning for its proposal as in
    :func:`models.matching.visible`: the same figures as aggregating
    ``visible()``, without its OR and correlated EXISTS on every row.
    """

    def aggregate(*where: Any) -> Any:
        return (
            select(
                col(Suggestion.proposal_id).label("proposal_id"),
                func.max(COMPARABLE_SCORE).label("best"),
                func.max(func.cast(col(Suggestion.is_new), Integer)).label("any_new"),
            )
            .where(*where)
            .group_by(col(Suggestion.proposal_id))
            .subquery()
        )

    batch = aggregate(col(Suggestion.match_run_id) == run_id)
    online = aggregate(col(Suggestion.match_run_id).is_(None), col(Suggestion.online_after_run_id) >= run_id)
    has_online = online.c.proposal_id.is_not(None)
    return (
        select(
            col(Proposal.id).label("proposal_id"),
            case((has_online, online.c.best), else_=batch.c.best).label("best"),
            case((has_online, online.c.any_new), else_=batch.c.any_new).label("any_new"),
        )
        .outerjoin(batch, batch.c.proposal_id == col(Proposal.id))
        .outerjoin(online, online.c.proposal_id == col(Proposal.id))
        .where(or_(batch.c.proposal_id.is_not(None), has_online))
        .subquery()
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _queue_conditions(filters: QueueFilters, best: Any, run: MatchRun | None, run_id: int) -> list[Any]:
    conditions: list[Any] = []
    if filters.status:
        conditions.append(Proposal.status == filters.status)
    if filters.min_score is not None:
        conditions.append(best.c.best >= filters.min_score)
    if filters.max_score is not None:
        conditions.append(best.c.best <= filters.max_score)
    if filters.q:
        pattern = _like(filters.q)
        conditions.append(
            or_(
                Proposal.title.like(pattern, escape="\\"),  # type: ignore[attr-defined]
                Proposal.organization.like(pattern, escape="\\"),  # type: ignore[attr-defined]
                Proposal.receipt_number.like(pattern, escape="\\"),  # type: ignore[union-attr]
            )
        )
    if filters.department:
        conditions.append(
            exists().where(
                col(Suggestion.proposal_id) == col(Proposal.id),
                visible(run_id),
                col(Program.id) == col(Suggestion.program_id),
                Program.department.like(_like(filters.department), escape="\\"),  # type: ignore[attr-defined]
            )
        )
    if filters.reviewed is not None:
        decided = exists().where(col(Decision.proposal_id) == col(Proposal.id))
        conditions.append(decided if filters.reviewed else ~decided)
    if filters.new_only:
        conditions.append(_new_condition(best, run))
    return conditions


def _new_condition(best: Any, run: MatchRun | None) -> Any:
    """Received since the last rematch started, or given a pair that is new in it."""
    if run is None:
        return True
    return or_(col(Proposal.created_at) >= run.started_at, best.c.any_new == 1)


def _filters_on_best(filters: QueueFilters) -> bool:
    """Whether a filter reads the best-score aggregate (the count must join it)."""
    return filters.min_score is not None or filters.max_score is not None or filters.new_only


def _needs_best_scores(filters: QueueFilters) -> bool:
    """Whether the page's query must join the best-score aggregate."""
    return _filters_on_best(filters) or filters.sort == "score"


def _order(filters: QueueFilters, best: Any) -> list[Any]:
    if filters.sort == "oldest":
        return [Proposal.id]
    if filters.sort == "score":
        return [func.coalesce(best.c.best, -1.0).desc(), Proposal.id.desc()]  # type: ignore[union-attr]
    if filters.sort == "title":
        return [Proposal.title, Proposal.id]
    return [Proposal.id.desc()]  # type: ignore[union-attr]


def review_queue(
    *, session: Session, filters: QueueFilters, page: int = 1, page_size: int = 25, top: int = 3
) -> QueueResult:
    """One page of proposals with their ``top`` suggestions, filtered and sorted."""
    run = latest_run(session=session)
    run_id = int(run.id) if run is not None and run.id is not None else 0
    best = _best_scores(run_id)
    conditions = _queue_conditions(filters, best, run, run_id)
    # The best-score aggregate reads every published suggestion: join it only
    # when a filter or the sort needs it; otherwise the page's own suggestions
    # (fetched below anyway) give its rows' best score and new flag.
    by_score = _needs_best_scores(filters)
    base = select(Proposal.id).where(*conditions)
    if _filters_on_best(filters):
        base = base.outerjoin(best, best.c.proposal_id == Proposal.id)
    total = int(session.exec(select(func.count()).select_from(base.subquery())).one())
    page = clamp_page(page, total, page_size)
    window = (page - 1) * page_size
    found: list[tuple[Proposal, float | None, Any]]
    if by_score:
        query = (
            select(Proposal, best.c.best, best.c.any_new)
            .outerjoin(best, best.c.proposal_id == Proposal.id)
            .where(*conditions)
            .order_by(*_order(filters, best))
            .offset(window)
            .limit(page_size)
        )
        found = [(p, b, n) for p, b, n in session.exec(query)]
    else:
        query_plain = select(Proposal).where(*conditions).order_by(*_order(filters, best)).offset(window).limit(page_size)
        found = [(p, None, None) for p in session.exec(query_plain)]
    ids = [p.id for p, _, _ in found if p.id is not None]
    by_proposal = suggestions_for(session=session, proposal_ids=ids)
    if not by_score:
        found = [
            (
                p,
                max((comparable_score(s) for s in by_proposal[p.id]), default=None),
                any(s.is_new for s in by_proposal[p.id]),
            )
            for p, _, _ in found
            if p.id is not None
        ]
    decisions = _current_for(session, ids)
    rows = []
    for proposal, best_score, any_new in found:
        assert proposal.id is not None
        is_new = bool(any_new) or (run is not None and proposal.created_at >= run.started_at)
        rows.append(
            QueueRow(
                proposal=proposal,
                best_score=best_score,
                suggestions=by_proposal.get(proposal.id, [])[:top],
                decided=decisions.get(proposal.id, {}),
                is_new=is_new or run is None,
            )
        )
    programs = programs_by_id(
        session=session,
        ids={s.program_id for r in rows for s in r.suggestions} | {pid for r in rows for pid in r.decided},
    )
    return QueueResult(page=Page(rows, page, page_size, total), programs=programs, last_run=run)


def _current_for(session: Session, proposal_ids: list[int]) -> dict[int, dict[int, Decision]]:
    """Current decision of each pair of these proposals, in one query."""
    out: dict[int, dict[int, Decision]] = {}
    if not proposal_ids:
        return out
    latest = (
        select(func.max(Decision.id))
        .where(Decision.proposal_id.in_(proposal_ids))  # type: ignore[attr-defined]
        .group_by(Decision.proposal_id, Decision.program_id)  # type: ignore[arg-type]
    )
    for decision in session.exec(select(Decision).where(Decision.id.in_(latest))):  # type: ignore[union-attr]
        if decision.verdict != Verdict.WITHDRAWN:
            out.setdefault(decision.proposal_id, {})[decision.program_id] = decision
    return out


def programs_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, Program]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.exec(select(Program).where(Program.id.in_(wanted)))  # type: ignore[union-attr]
    return {p.id: p for p in rows if p.id is not None}


def departments(*, session: Session) -> list[str]:
    """Every department (担当課) named by a program, split and sorted."""
    from corpus.programs import split_departments

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
    current: dict[int, Decision]  # program id → current decision
    history: list[Decision]
    last_run: MatchRun | None
    hand_paired: list[int] = field(default_factory=list)  # decided programs not suggested
    # The accepted proposals the suggestions resemble (exemplar_proposal_id → proposal).
    exemplars: dict[int, Proposal] = field(default_factory=dict)


def proposal_view(*, session: Session, proposal_id: int) -> ProposalView | None:
    """The proposal page: suggestions, their programs, decisions and history."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        return None
    suggestions = suggestions_for(session=session, proposal_ids=[proposal_id])[proposal_id]
    history = decision_history(session=session, proposal_id=proposal_id)
    current: dict[int, Decision] = {}
    for decision in history:
        current[decision.program_id] = decision
    current = {pid: d for pid, d in current.items() if d.verdict != Verdict.WITHDRAWN}
    suggested = {s.program_id for s in suggestions}
    hand = [pid for pid in current if pid not in suggested]
    programs = programs_by_id(session=session, ids=suggested | set(current))
    exemplar_ids = {s.exemplar_proposal_id for s in suggestions if s.exemplar_proposal_id is not None}
    exemplars = (
        {p.id: p for p in session.exec(select(Proposal).where(col(Proposal.id).in_(exemplar_ids)))}
        if exemplar_ids else {}
    )
    return ProposalView(
        proposal=proposal,
        suggestions=suggestions,
        programs=programs,
        current=current,
        history=list(reversed(history)),
        last_run=latest_run(session=session),
        hand_paired=hand,
        exemplars={pk: p for pk, p in exemplars.items() if pk is not None},
    )


def programs_without_keywords(*, session: Session) -> int:
    """How many active programs have no coordinator keywords yet."""
    return int(
        session.exec(
            select(func.count()).select_from(Program).where(col(Program.active).is_(True), col(Program.keywords) == "")
        ).one()
    )


def search_programs(
    *, session: Session, q: str = "", department: str = "", active_only: bool = False,
    page: int = 1, page_size: int = 25,
) -> Page:
    """Programs whose text or department contains ``q`` (all when empty), catalogue order."""
    conditions: list[Any] = []
    if q:
        pattern = _like(q)
        conditions.append(
            or_(
                *[
                    column.like(pattern, escape="\\")  # type: ignore[attr-defined]
                    for column in (
                        Program.external_id, Program.name, Program.purpose, Program.activities,
                        Program.department, Program.policy, Program.keywords,
                    )
                ]
            )
        )
    if department:
        conditions.append(Program.department.like(_like(department), escape="\\"))  # type: ignore[attr-defined]
    if active_only:
        conditions.append(Program.active.is_(True))  # type: ignore[attr-defined]
    total = int(session.exec(select(func.count()).select_from(Program).where(*conditions)).one())
    page = clamp_page(page, total, page_size)
    rows = list(
        session.exec(
            select(Program)
            .where(*conditions)
            .order_by(col(Program.active).desc(), col(Program.fiscal_year).desc(), col(Program.id))
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    )
    return Page(rows, page, page_size, total)


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
    run_id = _latest_run_id(session)
    suggestions = list(
        session.exec(
            select(Suggestion)
            .where(Suggestion.program_id.in_(program_ids), visible(run_id))  # type: ignore[attr-defined]
            .order_by(COMPARABLE_SCORE.desc())
            .limit(limit)
        )
    )
    latest = (
        select(func.max(Decision.id))
        .where(Decision.program_id.in_(program_ids))  # type: ignore[attr-defined]
        .group_by(Decision.proposal_id, Decision.program_id)  # type: ignore[arg-type]
    )
    decisions = {
        (d.proposal_id, d.program_id): d
        for d in session.exec(select(Decision).where(Decision.id.in_(latest)).limit(limit))  # type: ignore[union-attr]
    }
    keys = [(s.proposal_id, s.program_id) for s in suggestions]
    keys += [k for k in decisions if k not in set(keys)]
    proposals = {
        p.id: p
        for p in session.exec(select(Proposal).where(Proposal.id.in_({k[0] for k in keys})))  # type: ignore[union-attr]
    }
    programs = programs_by_id(session=session, ids=program_ids)
    by_pair = {(s.proposal_id, s.program_id): s for s in suggestions}
    return [
        PairRow(proposals[a], programs[b], by_pair.get((a, b)), decisions.get((a, b)))
        for a, b in keys
        if a in proposals and b in programs
    ]


def department_programs(*, session: Session, department: str) -> list[Program]:
    """Programs whose 担当課 names this department (as one of its names)."""
    from corpus.programs import split_departments

    candidates = session.exec(
        select(Program)
        .where(Program.department.like(_like(department), escape="\\"))  # type: ignore[attr-defined]
        .order_by(col(Program.fiscal_year).desc(), col(Program.id))
    )
    return [p for p in candidates if department in split_departments(p.department)]


# -- decisions from the console ------------------------------------------------------------


def decide(
    *, session: Session, proposal: Proposal, program_id: int, verdict: str, note: str = "",
    user_id: int | None = None, actor: str = "",
) -> Decision:
    """Record a verdict on one pair, then bring the proposal's status in line; commits."""
    if session.get(Program, program_id) is None:
        raise LookupError(f"program {program_id} does not exist")
    assert proposal.id is not None
    decision = record_decision(
        session=session,
        decision_in=DecisionCreate(
            proposal_id=proposal.id, program_id=program_id, verdict=verdict, note=note,
            user_id=user_id, decided_by=actor,
        ),
    )
    sync_status(session=session, proposal=proposal, actor=actor)
    return decision


def undo_last(
    *, session: Session, proposal: Proposal, user_id: int | None = None, actor: str = ""
) -> Decision | None:
    """Undo the proposal's newest decision by appending the pair's previous verdict.

    Nothing is deleted (the history is append-only). A pair with no earlier
    verdict gets ``withdrawn``: undecided again, for the rematch and the pages.
    """
    assert proposal.id is not None
    history = decision_history(session=session, proposal_id=proposal.id)
    if not history:
        return None
    last = history[-1]
    earlier = [d for d in history[:-1] if d.program_id == last.program_id]
    restored = earlier[-1].verdict if earlier else Verdict.WITHDRAWN.value
    decision = record_decision(
        session=session,
        decision_in=DecisionCreate(
            proposal_id=proposal.id, program_id=last.program_id, verdict=restored,
            note=f"取り消し（決定 #{last.id} を取り消し）", user_id=user_id, decided_by=actor,
        ),
    )
    record_event(
        session=session, action="decision.undo", entity="decision", entity_id=last.id or "",
        actor=actor, user_id=user_id,
        detail={"proposal_id": proposal.id, "program_id": last.program_id, "undone": last.verdict,
                "restored": restored},
    )
    session.commit()
    sync_status(session=session, proposal=proposal, actor=actor)
    return decision


def sync_status(*, session: Session, proposal: Proposal, actor: str = "") -> Proposal:
    """マッチ成立 while some pair is accepted; otherwise 検討中 once decided (見送り stays)."""
    assert proposal.id is not None
    current = current_decisions(session=session, proposal_id=proposal.id)
    if any(d.verdict == Verdict.ACCEPTED.value for d in current.values()):
        wanted = ProposalStatus.MATCHED.value
    elif proposal.status == ProposalStatus.DECLINED.value:
        return proposal
    elif current:
        wanted = ProposalStatus.REVIEWING.value
    else:
        wanted = ProposalStatus.RECEIVED.value
    if proposal.status != wanted:
        from models.proposals import set_status

        set_status(session=session, proposal=proposal, status=ProposalStatus(wanted), actor=actor)
    return proposal


# -- dashboard and audit --------------------------------------------------------------------


def fiscal_year(moment: datetime) -> int:
    """The Japanese fiscal year (年度, April to March) of a naive-UTC time."""
    local = (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(JST)
    return local.year if local.month >= 4 else local.year - 1


@dataclass
class Dashboard:
    by_status: dict[str, int]
    total: int
    awaiting_review: int
    new_since_run: int
    last_run: MatchRun | None
    last_attempt: MatchRun | None
    accepted_this_year: int
    fiscal_year: int
    accepted_by_year: dict[int, int]


def dashboard(*, session: Session, now: datetime | None = None) -> Dashboard:
    """Counts for the dashboard, in a fixed handful of queries."""
    now = now or utcnow()
    by_status = {
        status: int(n)
        for status, n in session.exec(select(Proposal.status, func.count()).group_by(Proposal.status))  # type: ignore[call-overload]
    }
    awaiting = int(
        session.exec(
            select(func.count()).select_from(Proposal).where(
                ~exists().where(col(Decision.proposal_id) == col(Proposal.id)),
                Proposal.status != ProposalStatus.DECLINED.value,
            )
        ).one()
    )
    run = latest_run(session=session)
    new_since = 0
    if run is not None:
        new_since = int(
            session.exec(select(func.count()).select_from(Proposal).where(Proposal.created_at >= run.started_at)).one()
        )
    else:
        new_since = sum(by_status.values())
    attempt = session.exec(select(MatchRun).order_by(MatchRun.id.desc()).limit(1)).first()  # type: ignore[union-attr]
    accepted_by_year: dict[int, int] = {}
    for decision in current_accepted(session=session):
        year = fiscal_year(decision.decided_at)
        accepted_by_year[year] = accepted_by_year.get(year, 0) + 1
    year = fiscal_year(now)
    return Dashboard(
        by_status=by_status,
        total=sum(by_status.values()),
        awaiting_review=awaiting,
        new_since_run=new_since,
        last_run=run,
        last_attempt=attempt,
        accepted_this_year=accepted_by_year.get(year, 0),
        fiscal_year=year,
        accepted_by_year=dict(sorted(accepted_by_year.items(), reverse=True)),
    )


def current_accepted(*, session: Session) -> list[Decision]:
    """The current decision of every pair whose current verdict is accepted."""
    latest = select(func.max(Decision.id)).group_by(Decision.proposal_id, Decision.program_id)  # type: ignore[arg-type]
    return list(
        session.exec(
            select(Decision).where(
                Decision.id.in_(latest),  # type: ignore[union-attr]
                Decision.verdict == Verdict.ACCEPTED.value,
            )
        )
    )


def audit_page(*, session: Session, action: str | None = None, page: int = 1, page_size: int = 50) -> Page:
    """Audit events, newest first."""
    conditions = [AuditEvent.action == action] if action else []
    total = int(session.exec(select(func.count()).select_from(AuditEvent).where(*conditions)).one())
    page = clamp_page(page, total, page_size)
    rows = list(
        session.exec(
            select(AuditEvent)
            .where(*conditions)
            .order_by(AuditEvent.id.desc())  # type: ignore[union-attr]
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    )
    return Page(rows, page, page_size, total)


def audit_actions(*, session: Session) -> list[str]:
    return sorted(session.exec(select(AuditEvent.action).distinct()).all())

