"""The coordinators' daily digest: one e-mail a day to every active coordinator
with an e-mail address, listing the proposals received since the last digest
and the opinion requests past their due date (docs/mail.md).

The audit trail is the digest's memory: each digest is the event
``mail.digest`` (its date in the detail), written in the same transaction as
its outbox row, so a day's digest is queued once and the next one lists the
proposals whose ``proposal.received`` events came after it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.audit import list_events, record_event
from models.clock import utcnow
from models.locks import LockHeld, acquire
from models.outbox import enqueue
from models.tables import AuditEvent, Proposal, User
from models.workflow import overdue_requests
from models.workflow_tables import MailMessage

ACTION = "mail.digest"
LOCK = "mail.digest"
# Without an earlier digest (the first day), proposals of the last day only,
# not every proposal the database ever received.
FIRST_DIGEST_LOOKBACK = timedelta(days=1)
MAX_LISTED = 200  # a longer list is the console's work, not an e-mail's


def coordinator_addresses(session: Session) -> list[str]:
    query = select(User.email).where(col(User.is_active).is_(True), col(User.email) != "").order_by(col(User.id))
    return list(dict.fromkeys(e.strip() for e in session.exec(query) if e.strip()))


def last_digest(session: Session) -> AuditEvent | None:
    events = list_events(session=session, action=ACTION, limit=1)
    return events[0] if events else None


def received_since(session: Session, last: AuditEvent | None, now: datetime) -> list[dict[str, Any]]:
    """The proposals whose ``proposal.received`` event came after the last digest."""
    query = select(AuditEvent).where(col(AuditEvent.action) == "proposal.received")
    if last is not None and last.id is not None:
        query = query.where(col(AuditEvent.id) > last.id)
    else:
        query = query.where(col(AuditEvent.at) >= now - FIRST_DIGEST_LOOKBACK)
    rows = []
    for event in session.exec(query.order_by(col(AuditEvent.id)).limit(MAX_LISTED)):
        proposal = session.get(Proposal, int(event.entity_id)) if event.entity_id.isdigit() else None
        if proposal is not None:
            rows.append({"receipt_number": proposal.receipt_number or "", "title": proposal.title,
                         "organization": proposal.organization, "proposal_id": proposal.id})
    return rows


def overdue(session: Session, today: date) -> list[dict[str, Any]]:
    rows = []
    for request, department in overdue_requests(session=session, today=today)[:MAX_LISTED]:
        proposal = session.get(Proposal, request.proposal_id)
        rows.append({"department": department.name, "title": proposal.title if proposal else "",
                     "receipt_number": (proposal.receipt_number or "") if proposal else "",
                     "due": request.due.isoformat(), "proposal_id": request.proposal_id})
    return rows


def queue_digest(*, session: Session, today: date, now: datetime | None = None) -> MailMessage | None:
    """Queue today's digest, once; one commit. None when today's is queued already
    (or being queued by another process), nobody has an address, or there is
    nothing to say (then a later call today may still send one)."""
    now = now or utcnow()
    # Read first: the sender asks every 30 seconds, the lock is for the one call that writes.
    if _content(session, today, now) is None:
        return None
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    try:
        # Two senders at 08:00 (the server's thread, a cron job) must not both queue it.
        lock = acquire(engine, LOCK)
    except LockHeld:
        return None
    try:
        return _queue(session, today, now)
    except BaseException:
        session.rollback()  # before the release: SQLite would wait on our write lock
        raise
    finally:
        lock.release()


def _content(session: Session, today: date, now: datetime) -> tuple[list[str], dict[str, Any]] | None:
    """The recipients and the context of today's digest; None if there is none to queue."""
    recipients = coordinator_addresses(session)
    last = last_digest(session)
    if not recipients or (last is not None and last.detail.get("date") == today.isoformat()):
        return None
    new_proposals = received_since(session, last, now)
    late = overdue(session, today)
    if not new_proposals and not late:
        return None
    return recipients, {"date": today.isoformat(), "new_proposals": new_proposals, "overdue": late}


def _queue(session: Session, today: date, now: datetime) -> MailMessage | None:
    content = _content(session, today, now)  # again, under the lock
    if content is None:
        return None
    recipients, context = content
    message = enqueue(session=session, kind="digest", to=recipients, context=context)
    session.flush()
    assert message is not None
    record_event(session=session, action=ACTION, entity="mail_message", entity_id=message.id or "",
                 detail={"date": today.isoformat(), "proposals": [p["proposal_id"] for p in context["new_proposals"]],
                         "overdue": len(context["overdue"]), "recipients": len(recipients)})
    session.commit()
    return message
