"""The dashboard's counts and the audit trail's pages. No Flask here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from models.clock import fiscal_year, utcnow
from models.decisions import current_accepted
from models.labels import ProposalStatus
from models.pages import Page, paginate
from models.suggestions import last_attempt, latest_run
from models.tables import AuditEvent, Decision, MatchRun, Proposal


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


def _awaiting_review(session: Session) -> int:
    """Proposals with no decision at all, 見送り excluded."""
    undecided = ~exists().where(col(Decision.proposal_id) == col(Proposal.id))
    query = select(func.count()).select_from(Proposal).where(
        undecided, col(Proposal.status) != ProposalStatus.DECLINED.value
    )
    return int(session.exec(query).one())


def dashboard(*, session: Session, now: datetime | None = None) -> Dashboard:
    """Counts for the dashboard, in a fixed handful of queries."""
    now = now or utcnow()
    counts = session.exec(select(col(Proposal.status), func.count()).group_by(col(Proposal.status)))
    by_status = {status: int(n) for status, n in counts}
    run = latest_run(session=session)
    if run is not None:
        since = select(func.count()).select_from(Proposal).where(col(Proposal.created_at) >= run.started_at)
        new_since = int(session.exec(since).one())
    else:
        new_since = sum(by_status.values())
    accepted_by_year: dict[int, int] = {}
    for decision in current_accepted(session=session):
        year = fiscal_year(decision.decided_at)
        accepted_by_year[year] = accepted_by_year.get(year, 0) + 1
    year = fiscal_year(now)
    return Dashboard(
        by_status=by_status,
        total=sum(by_status.values()),
        awaiting_review=_awaiting_review(session),
        new_since_run=new_since,
        last_run=run,
        last_attempt=last_attempt(session=session),
        accepted_this_year=accepted_by_year.get(year, 0),
        fiscal_year=year,
        accepted_by_year=dict(sorted(accepted_by_year.items(), reverse=True)),
    )


def audit_page(*, session: Session, action: str | None = None, page: int = 1, page_size: int = 50) -> Page:
    """Audit events, newest first."""
    conditions = [col(AuditEvent.action) == action] if action else []
    return paginate(session=session, model=AuditEvent, conditions=conditions,
                    order_by=[col(AuditEvent.id).desc()], page=page, page_size=page_size)


def audit_actions(*, session: Session) -> list[str]:
    return sorted(session.exec(select(AuditEvent.action).distinct()).all())
