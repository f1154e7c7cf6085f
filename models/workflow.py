"""Typed queries of the collaboration workflow: answers, opinion requests,
協働事業 and departments. Add and flush only; ``office`` commands commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from corpus.programs import split_departments
from models.clock import as_utc
from models.labels import RequestStatus, Stage
from models.outbox import messages_for
from models.tables import Proposal
from models.theme_tables import ProjectProposal
from models.workflow_tables import Answer, Department, MailMessage, OpinionRequest, Project

# -- answers ------------------------------------------------------------------------


def draft_answer(*, session: Session, proposal_id: int) -> Answer | None:
    """The proposal's unpublished answer, if the coordinator has saved one."""
    query = select(Answer).where(col(Answer.proposal_id) == proposal_id, col(Answer.published_at).is_(None))
    return session.exec(query.order_by(col(Answer.id).desc())).first()


def published_answers(*, session: Session, proposal_id: int) -> list[Answer]:
    """Every answer the NPO was shown, oldest first."""
    query = select(Answer).where(col(Answer.proposal_id) == proposal_id, col(Answer.published_at).is_not(None))
    return list(session.exec(query.order_by(col(Answer.published_at), col(Answer.id))))


def last_published(*, session: Session, proposal_id: int) -> Answer | None:
    answers = published_answers(session=session, proposal_id=proposal_id)
    return answers[-1] if answers else None


def public_stage(*, session: Session, proposal_id: int) -> str:
    """The stage the NPO sees: that of the last published answer, else 受付."""
    last = last_published(session=session, proposal_id=proposal_id)
    return last.stage if last is not None else Stage.RECEIVED.value


def drafts_for(*, session: Session, proposal_ids: Iterable[int]) -> dict[int, Answer]:
    ids = list(proposal_ids)
    if not ids:
        return {}
    query = select(Answer).where(col(Answer.proposal_id).in_(ids), col(Answer.published_at).is_(None))
    return {a.proposal_id: a for a in session.exec(query.order_by(col(Answer.id)))}


# -- opinion requests ---------------------------------------------------------------


def requests_for(*, session: Session, proposal_id: int) -> list[tuple[OpinionRequest, Department]]:
    """A proposal's opinion requests with their departments, oldest first."""
    query = (
        select(OpinionRequest, Department)
        .join(Department, col(Department.id) == col(OpinionRequest.department_id))
        .where(col(OpinionRequest.proposal_id) == proposal_id)
        .order_by(col(OpinionRequest.id))
    )
    return [(r, d) for r, d in session.exec(query)]


def overdue_requests(*, session: Session, today: date) -> list[tuple[OpinionRequest, Department]]:
    """Open requests past their due date, the most overdue first (the dashboard)."""
    query = (
        select(OpinionRequest, Department)
        .join(Department, col(Department.id) == col(OpinionRequest.department_id))
        .where(col(OpinionRequest.status) == RequestStatus.OPEN.value, col(OpinionRequest.due) < today)
        .order_by(col(OpinionRequest.due), col(OpinionRequest.id))
    )
    return [(r, d) for r, d in session.exec(query)]


def unreminded_overdue(*, session: Session, today: date) -> list[tuple[OpinionRequest, Department]]:
    """Overdue open requests that have had no reminder yet (one reminder each)."""
    return [(r, d) for r, d in overdue_requests(session=session, today=today) if r.reminded_at is None]


# -- 協働事業 -------------------------------------------------------------------------


def published_since(last: Answer | None, moment: datetime) -> bool:
    """Whether the NPO's last published answer came at or after ``moment``:
    what its status page shows of a 協働事業 recorded (or linked) then. A
    project the office records before answering stays internal until the
    answer is out."""
    return last is not None and last.published_at is not None and as_utc(last.published_at) >= as_utc(moment)


def project_of(*, session: Session, proposal_id: int) -> Project | None:
    """The 協働事業 the proposal leads (what its NPO's status page reads)."""
    return session.exec(select(Project).where(col(Project.proposal_id) == proposal_id)).first()


def project_for(*, session: Session, proposal_id: int) -> Project | None:
    """The proposal's 協働事業 for the office: the one it leads, else the joint
    one it is linked to (so that saving it edits that one: counted once)."""
    led = project_of(session=session, proposal_id=proposal_id)
    if led is not None:
        return led
    query = select(Project).join(ProjectProposal, col(ProjectProposal.project_id) == col(Project.id))
    return session.exec(query.where(col(ProjectProposal.proposal_id) == proposal_id)).first()


def projects_launched(*, session: Session, start: date, end: date) -> list[Project]:
    """協働事業 whose agreement (協定締結日) falls in the plan period, in date order.
    One row per project, so a second accepted pair never counts twice, nor a
    joint project of several proposals (models.theme_tables.ProjectProposal)."""
    query = select(Project).where(
        col(Project.agreement_date).is_not(None), col(Project.agreement_date) >= start, col(Project.agreement_date) <= end
    )
    return list(session.exec(query.order_by(col(Project.agreement_date), col(Project.id))))


def count_by_department(projects: Iterable[Project]) -> dict[str, int]:
    """Projects per department named in their 担当課 (a joint one counts for each)."""
    counts: dict[str, int] = {}
    for project in projects:
        for name in split_departments(project.departments) or ["（担当課なし）"]:
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# -- departments --------------------------------------------------------------------


def department_by_name(*, session: Session, name: str) -> Department | None:
    return session.exec(select(Department).where(col(Department.name) == name)).first()


def all_departments(*, session: Session, active_only: bool = False) -> list[Department]:
    query = select(Department)
    if active_only:
        query = query.where(col(Department.active).is_(True))
    return list(session.exec(query.order_by(col(Department.name))))


def ensure_departments(*, session: Session, names: Iterable[str], now: datetime | None = None) -> int:
    """Add a Department row (without e-mail) for each name not yet known; the count added."""
    wanted = {n for n in names if n}
    if not wanted:
        return 0
    known = set(session.exec(select(Department.name).where(col(Department.name).in_(wanted))).all())
    added = 0
    for name in sorted(wanted - known):
        session.add(Department(name=name[:100]))
        added += 1
    if added:
        session.flush()
    return added


# -- what the proposal page shows of the workflow ------------------------------------


@dataclass
class WorkflowView:
    requests: list[tuple[OpinionRequest, Department]]
    draft: Answer | None
    published: list[Answer]
    project: Project | None
    messages: list[MailMessage]


def workflow_view(*, session: Session, proposal_id: int) -> WorkflowView:
    return WorkflowView(
        requests=requests_for(session=session, proposal_id=proposal_id),
        draft=draft_answer(session=session, proposal_id=proposal_id),
        published=published_answers(session=session, proposal_id=proposal_id),
        project=project_for(session=session, proposal_id=proposal_id),
        messages=messages_for(session=session, proposal_id=proposal_id),
    )


@dataclass
class PlanProgress:
    """協働事業 launched in the plan period (by 協定締結日), for the dashboard."""

    start: date
    end: date
    projects: list[tuple[Project, Proposal]]
    by_department: dict[str, int]

    @property
    def launched(self) -> int:
        return len(self.projects)


def plan_progress(*, session: Session, start: str | date, end: str | date) -> PlanProgress:
    """The plan period's projects; ``start`` and ``end`` as dates or YYYY-MM-DD (settings)."""
    first = start if isinstance(start, date) else date.fromisoformat(start)
    last = end if isinstance(end, date) else date.fromisoformat(end)
    projects = projects_launched(session=session, start=first, end=last)
    proposals = {p.id: p for p in session.exec(select(Proposal).where(
        col(Proposal.id).in_([pr.proposal_id for pr in projects])))} if projects else {}
    return PlanProgress(start=first, end=last, projects=[(pr, proposals[pr.proposal_id]) for pr in projects],
                        by_department=count_by_department(projects))
