"""Coordinator decisions: an append-only history per (proposal, program) pair.

A change of mind is a new row; the current decision of a pair is its newest
row. The rematch reads this table and never writes it.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.audit import record_event
from models.labels import Verdict
from models.tables import Decision, DecisionCreate


def record_decision(*, session: Session, decision_in: DecisionCreate) -> Decision:
    """Append a decision (and its audit event) and commit."""
    if not decision_in.verdict_is_known():
        choices = ", ".join(v.value for v in Verdict)
        raise ValueError(f"verdict {decision_in.verdict!r} is not one of {choices}")
    decision = Decision.model_validate(decision_in)
    session.add(decision)
    session.flush()
    record_event(
        session=session,
        action="decision",
        entity="decision",
        entity_id=decision.id or "",
        actor=decision.decided_by,
        user_id=decision.user_id,
        detail={
            "proposal_id": decision.proposal_id,
            "program_id": decision.program_id,
            "verdict": decision.verdict,
        },
    )
    session.commit()
    session.refresh(decision)
    return decision


def decision_history(*, session: Session, proposal_id: int, program_id: int | None = None) -> list[Decision]:
    """Every decision on a proposal (or one pair), oldest first."""
    query = select(Decision).where(col(Decision.proposal_id) == proposal_id)
    if program_id is not None:
        query = query.where(col(Decision.program_id) == program_id)
    return list(session.exec(query.order_by(col(Decision.id))))


def _latest_ids():
    return select(func.max(col(Decision.id))).group_by(
        col(Decision.proposal_id), col(Decision.program_id)
    )


def current_decisions(*, session: Session, proposal_id: int | None = None) -> dict[tuple[int, int], Decision]:
    """The newest decision of every pair (of one proposal, or all), by (proposal_id, program_id)."""
    query = select(Decision).where(col(Decision.id).in_(_latest_ids()))
    if proposal_id is not None:
        query = query.where(col(Decision.proposal_id) == proposal_id)
    return {(d.proposal_id, d.program_id): d for d in session.exec(query)}


def current_verdict_pairs(
    *, session: Session, proposal_ids: list[int] | None = None
) -> dict[str, set[tuple[int, int]]]:
    """Pairs whose current verdict is accepted / rejected, as plain tuples (for the rematch)."""
    query = select(col(Decision.proposal_id), col(Decision.program_id), col(Decision.verdict)).where(
        col(Decision.id).in_(_latest_ids())
    )
    if proposal_ids is not None:
        query = query.where(col(Decision.proposal_id).in_(proposal_ids))
    pairs: dict[str, set[tuple[int, int]]] = {v.value: set() for v in Verdict}
    for proposal_id, program_id, verdict in session.exec(query):
        pairs.setdefault(verdict, set()).add((proposal_id, program_id))
    return pairs
