"""所見照会: the coordinator asks departments for their opinion, a department
answers through a signed link, a reminder goes once the due date passes.

Each command is one transaction with one event, and writes its e-mails to the
outbox (``models.outbox``) in that same transaction.

The link needs no account. Its token signs (request id, nonce) with the app's
secret key (itsdangerous, as Flask's own session cookie): a changed character
fails the signature, a token older than OPINION_LINK_DAYS is expired, and a
request answers once (its status is no longer open).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import update
from sqlmodel import Session, col

from corpus.programs import split_departments
from models.audit import record_event
from models.clock import utcnow
from models.labels import LABELS, RequestStatus, Stage
from models.outbox import enqueue
from models.suggestions import suggestions_for_proposal
from models.tables import Program, Proposal
from models.workflow import department_by_name, unreminded_overdue
from models.workflow_tables import Department, OpinionAnswer, OpinionRequest, OpinionRequestCreate
from office.commands import NOBODY, Actor, Change, finish, move_stage

SALT = "kyodo-opinion-link"
# Stages a first request moves to 所見照会中; later stages are left alone.
_BEFORE_CONSULTING = (Stage.RECEIVED.value, Stage.CHECKING.value)


class LinkInvalid(LookupError):
    """A tampered, unknown or replaced link (HTTP 404)."""


class LinkExpired(Exception):
    """A link older than its validity (HTTP 410)."""


class RequestClosed(Exception):
    """The request was answered or withdrawn already (HTTP 409); ``request`` says which."""

    def __init__(self, request: OpinionRequest):
        super().__init__(request.status)
        self.request = request


@dataclass(frozen=True)
class OpinionLinks:
    """Makes and opens the tokens of opinion links (the app's secret key and validity)."""

    secret_key: str
    max_age_days: int = 30

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret_key, salt=SALT)

    def token(self, request: OpinionRequest) -> str:
        return str(self._serializer().dumps([request.id, request.link_nonce]))

    def open(self, *, session: Session, token: str) -> OpinionRequest:
        """The request a token is for; LinkInvalid or LinkExpired otherwise."""
        if not token or len(token) > 300:
            raise LinkInvalid(token)
        try:
            request_id, nonce = self._serializer().loads(token, max_age=self.max_age_days * 86400)
        except SignatureExpired:
            raise LinkExpired(token) from None
        except (BadData, ValueError, TypeError):
            raise LinkInvalid(token) from None
        request = session.get(OpinionRequest, request_id) if isinstance(request_id, int) else None
        if request is None or not secrets.compare_digest(str(nonce), request.link_nonce):
            raise LinkInvalid(token)
        return request


def attached_programs(session: Session, proposal_id: int, department: str) -> list[int]:
    """The proposal's published suggestions whose 担当課 names this department."""
    ids = []
    for suggestion in suggestions_for_proposal(session=session, proposal_id=proposal_id):
        program = session.get(Program, suggestion.program_id)
        if program is not None and program.id is not None and department in split_departments(program.department):
            ids.append(program.id)
    return ids


def _mail_context(session: Session, request: OpinionRequest, department: Department,
                  proposal: Proposal) -> dict[str, Any]:
    names = [p.name for p in (session.get(Program, i) for i in request.program_ids) if p is not None]
    return {
        "department": department.name, "receipt_number": proposal.receipt_number or "",
        "title": proposal.title, "message": request.message, "due": request.due.isoformat(),
        "program_names": names, "proposal_id": proposal.id,
    }


def request_opinions(
    *, session: Session, proposal: Proposal, requests_in: list[OpinionRequestCreate], links: OpinionLinks,
    default_due_days: int = 14, actor: Actor = NOBODY, today: date | None = None,
) -> tuple[Change, list[OpinionRequest]]:
    """Ask one or more departments for their 所見: one row and one e-mail each.

    LookupError naming an unknown or inactive department, ValueError for a due
    date in the past; nothing is written then.
    """
    assert proposal.id is not None
    today = today or utcnow().date()
    rows: list[tuple[OpinionRequest, Department]] = []
    for wanted in requests_in:
        department = department_by_name(session=session, name=wanted.department.strip())
        if department is None or not department.active:
            raise LookupError(wanted.department)
        due = wanted.due or today + timedelta(days=default_due_days)
        if due < today:
            raise ValueError("due")
        request = OpinionRequest(
            proposal_id=proposal.id, department_id=department.id or 0, message=wanted.message, due=due,
            link_nonce=secrets.token_urlsafe(16), requested_by=actor.name,
            program_ids=attached_programs(session, proposal.id, department.name),
        )
        session.add(request)
        rows.append((request, department))
    session.flush()
    for request, department in rows:
        enqueue(session=session, kind="opinion_request", to=department.email_list, secret=links.token(request),
                context=_mail_context(session, request, department, proposal), proposal_id=proposal.id,
                opinion_request_id=request.id)
    wanted_stage = Stage.CONSULTING.value if proposal.stage in _BEFORE_CONSULTING else proposal.stage
    before, after = move_stage(session, proposal, wanted_stage)
    change = Change(proposal=proposal, stage_from=before, stage_to=after)
    detail = {"proposal_id": proposal.id, "requests": [r.id for r, _ in rows],
              "departments": [d.name for _, d in rows]}
    finish(session, change, action="opinion.request", entity="proposal", entity_id=proposal.id,
           actor=actor, detail=detail)
    return change, [r for r, _ in rows]


def answer_opinion(*, session: Session, request: OpinionRequest, answer: OpinionAnswer) -> OpinionRequest:
    """The department's answer, once: RequestClosed when it is not open.

    A compare-and-set on the status, so two answers sent at the same moment
    (two colleagues, a double click) record one and refuse the other.
    """
    now = utcnow()
    values = {
        "opinion": answer.opinion.value, "comment": answer.comment, "timing": answer.timing,
        "collaboration_type": answer.collaboration_type.value if answer.collaboration_type else None,
        "budget_thousand_yen": answer.budget_thousand_yen, "answerer": answer.answerer,
        "status": RequestStatus.ANSWERED.value, "closed_at": now,
    }
    claimed = session.execute(
        update(OpinionRequest)
        .where(col(OpinionRequest.id) == request.id, col(OpinionRequest.status) == RequestStatus.OPEN.value)
        .values(**values)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        session.refresh(request)
        raise RequestClosed(request)
    for name, value in values.items():
        setattr(request, name, value)
    proposal = session.get(Proposal, request.proposal_id)
    assert proposal is not None
    department = session.get(Department, request.department_id)
    name = department.name if department else ""
    finish(session, Change(proposal=proposal), action="opinion.answer", entity="opinion_request",
           entity_id=request.id or "", actor=Actor(name=answer.answerer or name),
           detail={"proposal_id": proposal.id, "department": name, "opinion": request.opinion,
                   "label": LABELS[answer.opinion]})
    return request


def withdraw_request(*, session: Session, request: OpinionRequest, actor: Actor = NOBODY) -> OpinionRequest:
    """The coordinator withdraws an open request: its link then says so."""
    if request.status != RequestStatus.OPEN.value:
        raise RequestClosed(request)
    request.status = RequestStatus.WITHDRAWN.value
    request.closed_at = utcnow()
    session.add(request)
    proposal = session.get(Proposal, request.proposal_id)
    assert proposal is not None
    finish(session, Change(proposal=proposal), action="opinion.withdraw", entity="opinion_request",
           entity_id=request.id or "", actor=actor, detail={"proposal_id": proposal.id})
    return request


def queue_reminders(*, session: Session, links: OpinionLinks, today: date | None = None) -> int:
    """One reminder e-mail for each open request past its due date that has had
    none yet; one event for the batch. The number of requests reminded."""
    today = today or utcnow().date()
    due = unreminded_overdue(session=session, today=today)
    reminded = []
    for request, department in due:
        proposal = session.get(Proposal, request.proposal_id)
        if proposal is None:
            continue
        enqueue(session=session, kind="reminder", to=department.email_list, secret=links.token(request),
                context=_mail_context(session, request, department, proposal), proposal_id=proposal.id,
                opinion_request_id=request.id)
        request.reminded_at = utcnow()
        session.add(request)
        reminded.append(request.id)
    if not reminded:
        return 0
    record_event(session=session, action="opinion.remind", entity="opinion_request",
                 detail={"requests": reminded})
    session.commit()
    return len(reminded)
