"""The dashboard's counts and the audit trail's pages. No Flask here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.clock import fiscal_year, utcnow
from models.labels import CLOSED_STAGES
from models.pages import Page, paginate
from models.queue import reviewed_condition
from models.suggestions import last_attempt, latest_run
from models.tables import AuditEvent, MatchRun, Proposal


@dataclass
class Dashboard:
    by_stage: dict[str, int]
    total: int
    awaiting_review: int
    new_since_run: int
    last_run: MatchRun | None
    last_attempt: MatchRun | None
    fiscal_year: int


def _awaiting_review(session: Session, run_id: int) -> int:
    """Proposals not 判断済み (models.queue.reviewed_condition), closed ones
    (不採択, 取り下げ, 完了) excluded: the queue's 未判断 count."""
    query = select(func.count()).select_from(Proposal).where(
        ~reviewed_condition(run_id), col(Proposal.stage).not_in(CLOSED_STAGES)
    )
    return int(session.exec(query).one())


def dashboard(*, session: Session, now: datetime | None = None) -> Dashboard:
    """Counts for the dashboard, in a fixed handful of queries."""
    now = now or utcnow()
    counts = session.exec(select(col(Proposal.stage), func.count()).group_by(col(Proposal.stage)))
    by_stage = {stage: int(n) for stage, n in counts}
    run = latest_run(session=session)
    if run is not None:
        since = select(func.count()).select_from(Proposal).where(col(Proposal.created_at) >= run.started_at)
        new_since = int(session.exec(since).one())
    else:
        new_since = sum(by_stage.values())
    year = fiscal_year(now)
    return Dashboard(
        by_stage=by_stage,
        total=sum(by_stage.values()),
        awaiting_review=_awaiting_review(session, run.id if run is not None and run.id is not None else 0),
        new_since_run=new_since,
        last_run=run,
        last_attempt=last_attempt(session=session),
        fiscal_year=year,
    )


def audit_page(*, session: Session, action: str | None = None, page: int = 1, page_size: int = 50) -> Page:
    """Audit events, newest first."""
    conditions = [col(AuditEvent.action) == action] if action else []
    return paginate(session=session, model=AuditEvent, conditions=conditions,
                    order_by=[col(AuditEvent.id).desc()], page=page, page_size=page_size)


def audit_actions(*, session: Session) -> list[str]:
    return sorted(session.exec(select(AuditEvent.action).distinct()).all())
