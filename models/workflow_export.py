"""The proposals export (CSV for Excel, and JSON): each proposal with its stage
(code and label), the stage its NPO was last shown, its opinion requests and
its 協働事業. No Flask here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from models.clock import iso_utc
from models.labels import LABELS, Stage
from models.tables import Proposal
from models.workflow_tables import Answer, OpinionRequest, Project

PROPOSAL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("受付番号", "receipt_number"),
    ("提案ID", "proposal_id"),
    ("提案タイトル", "title"),
    ("団体名", "organization"),
    ("受付日時", "created_at"),
    ("段階", "stage_label"),
    ("段階コード", "stage"),
    ("提案者に公開中の段階", "published_stage_label"),
    ("回答公開日時", "published_at"),
    ("所見照会", "requests"),
    ("所見回答済み", "answered"),
    ("協働事業名", "project_name"),
    ("協働事業の担当課", "project_departments"),
    ("協定締結日", "agreement_date"),
)


@dataclass(frozen=True)
class ProposalRow:
    receipt_number: str
    proposal_id: int
    title: str
    organization: str
    created_at: datetime
    stage: str
    stage_label: str
    published_stage: str
    published_stage_label: str
    published_at: datetime | None
    requests: int
    answered: int
    project_name: str
    project_departments: str
    agreement_date: date | None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["created_at"] = iso_utc(self.created_at)
        data["published_at"] = iso_utc(self.published_at) if self.published_at else None
        data["agreement_date"] = self.agreement_date.isoformat() if self.agreement_date else None
        return data


def _label(code: str) -> str:
    return LABELS[Stage(code)] if code in Stage._value2member_map_ else code


def proposal_rows(*, session: Session) -> list[ProposalRow]:
    """Every proposal, oldest first, in four queries."""
    proposals = list(session.exec(select(Proposal).order_by(col(Proposal.id))))
    published: dict[int, Answer] = {}
    query = select(Answer).where(col(Answer.published_at).is_not(None)).order_by(col(Answer.published_at))
    for answer in session.exec(query):
        published[answer.proposal_id] = answer  # the last one wins
    requests: dict[int, list[OpinionRequest]] = {}
    for request in session.exec(select(OpinionRequest)):
        requests.setdefault(request.proposal_id, []).append(request)
    projects = {p.proposal_id: p for p in session.exec(select(Project))}
    rows = []
    for p in proposals:
        assert p.id is not None
        shown, asked, project = published.get(p.id), requests.get(p.id, []), projects.get(p.id)
        shown_stage = shown.stage if shown else Stage.RECEIVED.value
        rows.append(ProposalRow(
            receipt_number=p.receipt_number or "", proposal_id=p.id, title=p.title, organization=p.organization,
            created_at=p.created_at, stage=p.stage, stage_label=_label(p.stage), published_stage=shown_stage,
            published_stage_label=_label(shown_stage), published_at=shown.published_at if shown else None,
            requests=len(asked), answered=sum(1 for r in asked if r.opinion), project_name=project.name if project else "",
            project_departments=project.departments if project else "",
            agreement_date=project.agreement_date if project else None,
        ))
    return rows
