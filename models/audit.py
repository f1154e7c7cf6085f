"""The audit trail: who decided or imported what, and when.

Every command (``office``) writes exactly one event in its own transaction, so
the trail is also the outbox of later work (e-mail, notifications): a reader
keeps the id of the last event it handled and asks for the ones after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from models.tables import AuditEvent


def record_event(
    *,
    session: Session,
    action: str,
    entity: str = "",
    entity_id: str | int = "",
    actor: str = "",
    user_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one event to the session (the caller commits with its own change)."""
    event = AuditEvent(
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        actor=actor,
        user_id=user_id,
        detail=detail or {},
    )
    session.add(event)
    return event


def list_events(*, session: Session, action: str | None = None, limit: int = 100) -> list[AuditEvent]:
    """The newest events first."""
    query = select(AuditEvent)
    if action is not None:
        query = query.where(col(AuditEvent.action) == action)
    return list(session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit)))


def events_since(
    *, session: Session, after_id: int = 0, actions: Iterable[str] | None = None, limit: int = 500
) -> list[AuditEvent]:
    """Events newer than ``after_id`` (of these actions), oldest first: the outbox read.

    Ids only grow and an event is committed with the change it records, so a
    reader that stores the last id it handled sees every later change once.
    """
    query = select(AuditEvent).where(col(AuditEvent.id) > after_id)
    if actions is not None:
        query = query.where(col(AuditEvent.action).in_(list(actions)))
    return list(session.exec(query.order_by(col(AuditEvent.id)).limit(limit)))
