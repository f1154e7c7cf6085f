"""今すぐ再マッチ as a command: who asked for a rematch, in the audit trail.

The queue (web.jobs) coalesces requests, so the event says whether this one
queued a run or joined the one already waiting; either way the coordinator
asked, and the trail keeps it.
"""

from __future__ import annotations

from sqlmodel import Session

from models.audit import record_event
from office.commands import NOBODY, Actor


def record_rematch_request(*, session: Session, queued: bool, actor: Actor = NOBODY) -> None:
    """The event of a rematch asked for by hand, in its own commit."""
    record_event(session=session, action="rematch.request", entity="match_run", actor=actor.name,
                 user_id=actor.user_id, detail={"queued": queued})
    session.commit()
