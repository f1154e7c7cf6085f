"""The review queue: one page of proposals with their top suggestions, current
decisions and match outcome, filtered and sorted.

A fixed number of queries whatever the number of rows (no N+1): the page's
proposals first, then their suggestions, outcomes, programs and decisions in
one ``IN`` query each. No Flask here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, exists, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from models.clock import JST
from models.decisions import by_proposal, current_decisions
from models.labels import CLOSED_STAGES, Confidence, Verdict
from models.pages import Page, clamp_page, like
from models.review import programs_by_id
from models.suggestions import (
    COMPARABLE_SCORE,
    comparable_score,
    latest_run,
    outcomes_for,
    suggestions_for,
    visible,
)
from models.tables import Answer, Decision, MatchOutcome, MatchRun, Program, Proposal, Suggestion

SORTS = ("newest", "oldest", "score", "title", "confidence")
CONFIDENCES = tuple(c.value for c in Confidence)


@dataclass(frozen=True)
class QueueFilters:
    """What the queue's filter form asks for; None means no filter."""

    stage: str | None = None
    department: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    new_only: bool = False
    reviewed: bool | None = None
    q: str | None = None
    sort: str = "newest"
    received_from: date | None = None  # 受付日, in Japan time, both ends included
    received_to: date | None = None
    confidence: str | None = None  # "high" / "medium" / "low" of the published outcome

    def reads_best(self) -> bool:
        """Whether a filter reads the best-score aggregate (the count must join it)."""
        return self.min_score is not None or self.max_score is not None or self.new_only

    def joins_best(self) -> bool:
        """Whether the page's query must join the best-score aggregate."""
        return self.reads_best() or self.sort == "score"


@dataclass
class QueueRow:
    proposal: Proposal
    best_score: float | None
    suggestions: list[Suggestion]
    decided: dict[int, Decision]  # program id → current standing decision
    is_new: bool
    outcome: MatchOutcome | None = None


@dataclass
class QueueResult:
    page: Page
    programs: dict[int, Program]
    last_run: MatchRun | None


def _best_scores(run_id: int) -> Any:
    """Subquery: proposal_id, best visible score, whether any visible pair is new.

    Two plain aggregates, the latest run's rows (by the run index) and the
    online rows, the online one winning for its proposal as in
    :func:`models.suggestions.visible`: the same figures as aggregating
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


def _confidence_of_proposal(run_id: int) -> Any:
    """Correlated scalar: the published outcome's confidence as a number
    (high 0, medium 1, low 2; 3 when there is none), for sorting and filtering."""
    rank = case(
        (col(MatchOutcome.confidence) == Confidence.HIGH.value, 0),
        (col(MatchOutcome.confidence) == Confidence.MEDIUM.value, 1),
        (col(MatchOutcome.confidence) == Confidence.LOW.value, 2),
        else_=3,
    )
    return (
        select(rank)
        .where(col(MatchOutcome.proposal_id) == col(Proposal.id), visible(run_id, MatchOutcome))
        .limit(1)
        .scalar_subquery()
    )


def _text_condition(q: str) -> Any:
    pattern = like(q)
    return or_(*[column.like(pattern, escape="\\") for column in
                 (col(Proposal.title), col(Proposal.organization), col(Proposal.receipt_number))])


def _department_condition(department: str, run_id: int) -> Any:
    """The proposal's best suggestion, or a pair the coordinator accepted, is
    in this department (not any of the top 5: the 5th is rarely the one)."""
    named = col(Program.department).like(like(department), escape="\\")
    best = exists().where(
        col(Suggestion.proposal_id) == col(Proposal.id), visible(run_id), col(Suggestion.rank) == 1,
        col(Program.id) == col(Suggestion.program_id), named,
    )
    chosen, newer = aliased(Decision), aliased(Decision)
    is_current = ~exists().where(col(newer.proposal_id) == col(chosen.proposal_id),
                                 col(newer.program_id) == col(chosen.program_id), col(newer.id) > col(chosen.id))
    accepted = exists().where(
        col(chosen.proposal_id) == col(Proposal.id), col(chosen.verdict) == Verdict.ACCEPTED.value, is_current,
        col(Program.id) == col(chosen.program_id), named,
    )
    return or_(best, accepted)


def _received_conditions(filters: QueueFilters) -> list[Any]:
    """受付日 from / to, as Japan's calendar days, turned into UTC bounds."""
    conditions = []
    if filters.received_from is not None:
        start = datetime.combine(filters.received_from, time(), tzinfo=JST).astimezone(UTC)
        conditions.append(col(Proposal.created_at) >= start)
    if filters.received_to is not None:
        end = datetime.combine(filters.received_to + timedelta(days=1), time(), tzinfo=JST).astimezone(UTC)
        conditions.append(col(Proposal.created_at) < end)
    return conditions


def _standing(program_id: Any) -> Any:
    """SQL: the newest decision of (this proposal, ``program_id``) decides the pair."""
    newest = aliased(Decision)
    latest = (
        select(func.max(col(newest.id)))
        .where(col(newest.proposal_id) == col(Proposal.id), col(newest.program_id) == program_id)
        # Two levels down from the proposal: correlate explicitly (auto-correlation
        # looks one level up only, and would join proposal and suggestion again).
        .correlate_except(newest)
        .scalar_subquery()
    )
    return exists().where(col(Decision.id) == latest, col(Decision.verdict) != Verdict.WITHDRAWN.value)


def reviewed_condition(run_id: int) -> Any:
    """SQL: the proposal is 判断済み (the one rule, for the queue and the dashboard):
    its answer is published, or every one of its published suggestions has a
    standing decision and at least one pair is decided. An undo that leaves a
    suggestion undecided makes it 未判断 again."""
    published = exists().where(col(Answer.proposal_id) == col(Proposal.id), col(Answer.published_at).is_not(None))
    undecided = exists().where(
        col(Suggestion.proposal_id) == col(Proposal.id), visible(run_id), ~_standing(col(Suggestion.program_id))
    )
    decided = aliased(Decision)
    any_standing = exists().where(col(decided.proposal_id) == col(Proposal.id), _standing(col(decided.program_id)))
    return or_(published, and_(~undecided, any_standing))


def _conditions(filters: QueueFilters, best: Any, run: MatchRun | None, run_id: int) -> list[Any]:
    conditions: list[Any] = []
    if filters.stage:
        conditions.append(col(Proposal.stage) == filters.stage)
    if filters.min_score is not None:
        conditions.append(best.c.best >= filters.min_score)
    if filters.max_score is not None:
        conditions.append(best.c.best <= filters.max_score)
    if filters.q:
        conditions.append(_text_condition(filters.q))
    conditions.extend(_received_conditions(filters))
    if filters.department:
        conditions.append(_department_condition(filters.department, run_id))
    if filters.confidence in CONFIDENCES:
        wanted = CONFIDENCES.index(str(filters.confidence))
        conditions.append(func.coalesce(_confidence_of_proposal(run_id), 3) == wanted)
    if filters.reviewed is not None:
        reviewed = reviewed_condition(run_id)
        conditions.append(reviewed if filters.reviewed else ~reviewed)
    if filters.new_only and run is not None:
        # Received since the last rematch started, or given a pair that is new in it.
        conditions.append(or_(col(Proposal.created_at) >= run.started_at, best.c.any_new == 1))
    return conditions


def _order(filters: QueueFilters, best: Any, run_id: int) -> list[Any]:
    if filters.sort == "confidence":
        return [func.coalesce(_confidence_of_proposal(run_id), 3), col(Proposal.id).desc()]
    if filters.sort == "oldest":
        return [col(Proposal.id)]
    if filters.sort == "score":
        return [func.coalesce(best.c.best, -1.0).desc(), col(Proposal.id).desc()]
    if filters.sort == "title":
        return [col(Proposal.title), col(Proposal.id)]
    return [col(Proposal.id).desc()]


Found = list[tuple[Proposal, float | None, Any]]


def _page_rows(session: Session, filters: QueueFilters, best: Any, conditions: list[Any],
               window: int, size: int, run_id: int) -> Found:
    """The page's proposals, with the aggregate's best score and new flag when joined."""
    if filters.joins_best():
        query = (
            select(Proposal, best.c.best, best.c.any_new)
            .outerjoin(best, best.c.proposal_id == col(Proposal.id))
            .where(*conditions).order_by(*_order(filters, best, run_id)).offset(window).limit(size)
        )
        return [(p, b, n) for p, b, n in session.exec(query)]
    plain = select(Proposal).where(*conditions).order_by(*_order(filters, best, run_id)).offset(window).limit(size)
    return [(p, None, None) for p in session.exec(plain)]


def _count(session: Session, filters: QueueFilters, best: Any, conditions: list[Any]) -> int:
    base = select(col(Proposal.id)).where(*conditions)
    if filters.reads_best():
        base = base.outerjoin(best, best.c.proposal_id == col(Proposal.id))
    return int(session.exec(select(func.count()).select_from(base.subquery())).one())


def review_queue(
    *, session: Session, filters: QueueFilters, page: int = 1, page_size: int = 25, top: int = 3
) -> QueueResult:
    """One page of proposals with their ``top`` suggestions, filtered and sorted."""
    run = latest_run(session=session)
    run_id = int(run.id) if run is not None and run.id is not None else 0
    # The best-score aggregate reads every published suggestion: joined only
    # when a filter or the sort needs it; otherwise the page's own suggestions
    # (fetched anyway) give its rows' best score and new flag.
    best = _best_scores(run_id)
    conditions = _conditions(filters, best, run, run_id)
    total = _count(session, filters, best, conditions)
    page = clamp_page(page, total, page_size)
    found = _page_rows(session, filters, best, conditions, (page - 1) * page_size, page_size, run_id)
    rows = _queue_rows(session, found, run, top, joined=filters.joins_best())
    ids = {s.program_id for r in rows for s in r.suggestions} | {pid for r in rows for pid in r.decided}
    return QueueResult(page=Page(rows, page, page_size, total), programs=programs_by_id(session=session, ids=ids),
                       last_run=run)


def _queue_rows(session: Session, found: Found, run: MatchRun | None, top: int, *, joined: bool) -> list[QueueRow]:
    ids = [p.id for p, _, _ in found if p.id is not None]
    run_id = run.id if run is not None and run.id is not None else 0
    suggestions = suggestions_for(session=session, proposal_ids=ids, run_id=run_id)
    outcomes = outcomes_for(session=session, proposal_ids=ids, run_id=run_id)
    decisions = by_proposal(current_decisions(session=session, proposal_ids=ids, standing_only=True))
    rows = []
    for proposal, best, any_new in found:
        assert proposal.id is not None
        mine = suggestions[proposal.id]
        if not joined:
            best = max((comparable_score(s) for s in mine), default=None)
            any_new = any(s.is_new for s in mine)
        received_since = run is None or proposal.created_at >= run.started_at
        rows.append(QueueRow(
            proposal=proposal, best_score=best, suggestions=mine[:top], decided=decisions.get(proposal.id, {}),
            is_new=bool(any_new) or received_since, outcome=outcomes.get(proposal.id),
        ))
    return rows


def is_reviewed(*, session: Session, proposal_id: int, run_id: int) -> bool:
    """Whether one proposal is 判断済み (:func:`reviewed_condition`)."""
    query = select(col(Proposal.id)).where(col(Proposal.id) == proposal_id, reviewed_condition(run_id))
    return session.exec(query).first() is not None


def next_unreviewed(*, session: Session, after_id: int, run_id: int) -> int | None:
    """The 未判断 proposal after ``after_id`` in the queue's default order (newest
    first), wrapping round to the newest; closed stages left out; None when
    there is none but ``after_id`` itself."""
    open_ = [~reviewed_condition(run_id), col(Proposal.stage).not_in(CLOSED_STAGES), col(Proposal.id) != after_id]
    older = select(col(Proposal.id)).where(*open_, col(Proposal.id) < after_id).order_by(col(Proposal.id).desc())
    found = session.exec(older.limit(1)).first()
    if found is None:
        newest = select(col(Proposal.id)).where(*open_).order_by(col(Proposal.id).desc())
        found = session.exec(newest.limit(1)).first()
    return found
