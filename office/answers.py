"""The answer to the NPO and the 協働事業 of an adopted proposal.

The coordinator writes an answer (理由, 次の手順, 連絡先) with the stage it
announces, saves it as a draft, and publishes it: only then does the NPO's
status page show that stage and text, and an e-mail tells the NPO. Pair
decisions never reach the NPO (``office.commands``). Each command is one
transaction: its rows, its events, its e-mails, one commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col

from models.audit import record_event
from models.clock import to_jst, utcnow
from models.labels import CLOSED_STAGES, LABELS, RequestStatus, Stage
from models.outbox import enqueue
from models.tables import Proposal
from models.themes import is_open, link_proposals, projects_of
from models.workflow import draft_answer, project_for, project_of, requests_for
from models.workflow_tables import Answer, AnswerCreate, Project, ProjectCreate
from office.commands import NOBODY, Actor, Change, finish, move_stage

# A 協働事業 is recorded for a proposal at one of these stages only.
PROJECT_STAGES = (Stage.ADOPTED.value, Stage.RUNNING.value, Stage.COMPLETED.value)
WITHDRAWN_TEXT = "提案者からの申し出により、この提案は取り下げられました。"


def save_answer(*, session: Session, proposal: Proposal, answer_in: AnswerCreate, actor: Actor = NOBODY) -> Answer:
    """Save (or replace) the proposal's draft answer; the NPO sees nothing yet."""
    assert proposal.id is not None
    draft = draft_answer(session=session, proposal_id=proposal.id) or Answer(proposal_id=proposal.id, stage="", text="")
    draft.stage, draft.text = answer_in.stage.value, answer_in.text
    draft.written_by, draft.updated_at = actor.name, utcnow()
    session.add(draft)
    session.flush()
    finish(session, Change(proposal=proposal), action="answer.draft", entity="proposal", entity_id=proposal.id,
           actor=actor, detail={"stage": draft.stage, "answer_id": draft.id})
    return draft


@dataclass(frozen=True)
class Published:
    proposal: Proposal
    answer: Answer


def _publish_one(session: Session, proposal: Proposal, draft: Answer, actor: Actor) -> Published | None:
    """Stamp the draft with a compare-and-set, so two coordinators publishing at
    once send the NPO one e-mail; None when the other one was first."""
    now = utcnow()
    claimed = session.execute(
        update(Answer).where(col(Answer.id) == draft.id, col(Answer.published_at).is_(None))
        .values(published_at=now, published_by=actor.name)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    draft.published_at, draft.published_by = now, actor.name
    before, after = move_stage(session, proposal, draft.stage)
    enqueue(
        session=session, kind="answer", to=proposal.email, proposal_id=proposal.id,
        context={"receipt_number": proposal.receipt_number, "title": proposal.title, "stage": draft.stage,
                 "stage_label": LABELS[Stage(draft.stage)], "text": draft.text,
                 "published_at": to_jst(now).strftime("%Y年%m月%d日")},
    )
    record_event(session=session, action="answer.publish", entity="proposal", entity_id=proposal.id or "",
                 actor=actor.name, user_id=actor.user_id,
                 detail={"answer_id": draft.id, "stage": {"from": before, "to": after}})
    return Published(proposal=proposal, answer=draft)


def publish_answers(*, session: Session, proposals: Iterable[Proposal], actor: Actor = NOBODY) -> list[Published]:
    """Publish the drafts of these proposals at once (Decidim publishes answers in
    bulk): each proposal's stage becomes its answer's, the NPO gets its e-mail,
    one event per proposal, one commit for all. Proposals without a draft are
    skipped (not in the result)."""
    published = []
    for proposal in proposals:
        assert proposal.id is not None
        draft = draft_answer(session=session, proposal_id=proposal.id)
        done = _publish_one(session, proposal, draft, actor) if draft is not None else None
        if done is not None:
            published.append(done)
    session.commit()
    return published


def withdraw_by_proposer(*, session: Session, proposal: Proposal) -> Change:
    """The NPO withdraws its proposal from its status page: 取り下げ, published at
    once (the NPO did it), open opinion requests withdrawn, one e-mail. A
    proposal already closed (取り下げ, 不採択, 完了) cannot be withdrawn: ValueError."""
    assert proposal.id is not None
    if proposal.stage in CLOSED_STAGES:
        raise ValueError(proposal.stage)
    now = utcnow()
    session.add(Answer(proposal_id=proposal.id, stage=Stage.WITHDRAWN.value, text=WITHDRAWN_TEXT,
                       written_by="提案者", updated_at=now, published_at=now, published_by="提案者"))
    for request, _department in requests_for(session=session, proposal_id=proposal.id):
        if request.status == RequestStatus.OPEN.value:
            request.status, request.closed_at = RequestStatus.WITHDRAWN.value, now
            session.add(request)
    before, after = move_stage(session, proposal, Stage.WITHDRAWN.value)
    enqueue(session=session, kind="answer", to=proposal.email, proposal_id=proposal.id,
            context={"receipt_number": proposal.receipt_number, "title": proposal.title,
                     "stage": Stage.WITHDRAWN.value, "stage_label": LABELS[Stage.WITHDRAWN], "text": WITHDRAWN_TEXT,
                     "published_at": to_jst(now).strftime("%Y年%m月%d日")})
    change = Change(proposal=proposal, stage_from=before, stage_to=after)
    return finish(session, change, action="proposal.withdraw", entity="proposal", entity_id=proposal.id,
                  actor=Actor(name="提案者"), detail={"from": before, "to": after})


def save_project(*, session: Session, proposal: Proposal, project_in: ProjectCreate, actor: Actor = NOBODY) -> Project:
    """Record (or correct) the 協働事業 of an adopted proposal; one per proposal,
    so it counts once toward the plan's target. ValueError before 採択."""
    assert proposal.id is not None
    if proposal.stage not in PROJECT_STAGES:
        raise ValueError(proposal.stage)
    project = project_for(session=session, proposal_id=proposal.id) or Project(proposal_id=proposal.id, name="")
    _fill(session, project, project_in)
    finish(session, Change(proposal=proposal), action="project.save", entity="project", entity_id=project.id or "",
           actor=actor, detail={"proposal_id": proposal.id, "name": project.name,
                                "agreement_date": project.agreement_date.isoformat() if project.agreement_date else None})
    return project


def _fill(session: Session, project: Project, project_in: ProjectCreate) -> None:
    for name, value in project_in.model_dump().items():
        setattr(project, name, value)
    project.collaboration_type = project_in.collaboration_type.value
    project.updated_at = utcnow()
    session.add(project)
    session.flush()


class JointProjectError(ValueError):
    """A joint 協働事業 that cannot be proposed; ``message`` says why, in Japanese."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def propose_joint_project(*, session: Session, proposals: Sequence[Proposal], project_in: ProjectCreate,
                          actor: Actor = NOBODY) -> Project:
    """One 協働事業 of several open proposals (from a theme, or selected): the
    first one received leads (``Project.proposal_id``, so the pages of a single
    project keep working; a project it already leads becomes the joint one;
    any other proposal already in a 協働事業 is refused: JointProjectError),
    every one is linked (``ProjectProposal``); one project, counted once toward
    the plan. Each NPO sees it once an answer to its proposal is published."""
    chosen = sorted({p.id: p for p in proposals if p.id is not None}.values(), key=lambda p: p.id or 0)
    if len(chosen) < 2:
        raise JointProjectError("共同の協働事業には、提案を二つ以上選んでください。")
    if any(not is_open(p) for p in chosen):
        raise JointProjectError("不採択・取り下げ・完了の提案、統合された提案は選べません。")
    lead = chosen[0]
    assert lead.id is not None
    project = project_of(session=session, proposal_id=lead.id) or Project(proposal_id=lead.id, name="")
    taken = projects_of(session=session, proposal_ids=[p.id for p in chosen if p.id is not None])
    if any(pid != project.id for pid in taken.values()):
        raise JointProjectError("選んだ提案の中に、すでに別の協働事業に含まれている提案があります。")
    _fill(session, project, project_in)
    assert project.id is not None
    link_proposals(session=session, project_id=project.id, proposal_ids=[p.id for p in chosen if p.id is not None])
    record_event(session=session, action="project.joint", entity="project", entity_id=project.id,
                 actor=actor.name, user_id=actor.user_id,
                 detail={"proposal_ids": [p.id for p in chosen], "lead_id": lead.id, "name": project.name})
    session.commit()
    return project
