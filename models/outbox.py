"""The mail outbox: a message is a row written in the same transaction as the
change it tells of (flush only; the command commits). ``office.mail`` renders
and delivers pending rows; see docs/mail.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from models.labels import MailStatus
from models.workflow_tables import MailMessage

# The kinds of message, each with its template web/templates/mail/<kind>.txt.
KINDS = ("receipt", "answer", "opinion_request", "reminder", "digest", "status_link", "merged", "unmerged")


def enqueue(
    *, session: Session, kind: str, to: list[str] | str, context: dict[str, Any],
    secret: str | None = None, proposal_id: int | None = None, opinion_request_id: int | None = None,
) -> MailMessage | None:
    """Add one message to the session; None (nothing queued) when there is no address."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    addresses = [to] if isinstance(to, str) else list(to)
    addresses = [a.strip() for a in addresses if a and a.strip()]
    if not addresses:
        return None
    message = MailMessage(
        kind=kind, to_address=", ".join(addresses), context=context, secret=secret,
        proposal_id=proposal_id, opinion_request_id=opinion_request_id,
    )
    session.add(message)
    return message


def failed_messages(*, session: Session, limit: int = 50) -> list[MailMessage]:
    """Messages the sender gave up on, newest first (the dashboard lists them)."""
    query = select(MailMessage).where(col(MailMessage.status) == MailStatus.FAILED.value)
    return list(session.exec(query.order_by(col(MailMessage.id).desc()).limit(limit)))


def counts_by_status(*, session: Session) -> dict[str, int]:
    rows = session.exec(select(col(MailMessage.status), func.count()).group_by(col(MailMessage.status)))
    return {status: int(n) for status, n in rows}


def messages_for(*, session: Session, proposal_id: int) -> list[MailMessage]:
    """A proposal's messages, oldest first (the proposal page shows what went out)."""
    query = select(MailMessage).where(col(MailMessage.proposal_id) == proposal_id)
    return list(session.exec(query.order_by(col(MailMessage.id))))


def due_messages(*, session: Session, now: datetime, limit: int = 50) -> list[MailMessage]:
    """Pending messages whose next attempt is due, oldest first."""
    query = select(MailMessage).where(
        col(MailMessage.status) == MailStatus.PENDING.value, col(MailMessage.next_attempt_at) <= now
    )
    return list(session.exec(query.order_by(col(MailMessage.id)).limit(limit)))
