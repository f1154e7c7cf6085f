"""The audit trail: who decided or imported what, and when."""

from __future__ import annotations

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
