"""Coordinator decisions: an append-only history per (proposal, program) pair.

A change of mind is a new row; the current decision of a pair is its newest
row (:func:`current_ids`, the one definition). ``withdrawn`` (written by undo)
means the pair is undecided again: such a decision is current but not
*standing*. The rematch reads this table and never writes it; only the
commands in ``office.commands`` append to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.labels import Verdict
from models.tables import Decision, DecisionCreate

Pair = tuple[int, int]  # (proposal_id, program_id)


def append_decision(*, session: Session, decision_in: DecisionCreate) -> Decision:
    """Add a decision row and flush (the calling command commits)."""
    if not decision_in.verdict_is_known():
        choices = ", ".join(v.value for v in Verdict)
        raise ValueError(f"verdict {decision_in.verdict!r} is not one of {choices}")
    decision = Decision.model_validate(decision_in)
    session.add(decision)
    session.flush()
    return decision


def decision_history(*, session: Session, proposal_id: int, program_id: int | None = None) -> list[Decision]:
    """Every decision on a proposal (or one pair), oldest first."""
    query = select(Decision).where(col(Decision.proposal_id) == proposal_id)
    if program_id is not None:
        query = query.where(col(Decision.program_id) == program_id)
    return list(session.exec(query.order_by(col(Decision.id))))


def current_ids(*, proposal_ids: Iterable[int] | None = None, program_ids: Iterable[int] | None = None) -> Any:
    """Subquery: the id of the newest decision of each pair (of these proposals / programs)."""
    query = select(func.max(col(Decision.id)))
    if proposal_ids is not None:
        query = query.where(col(Decision.proposal_id).in_(list(proposal_ids)))
    if program_ids is not None:
        query = query.where(col(Decision.program_id).in_(list(program_ids)))
    return query.group_by(col(Decision.proposal_id), col(Decision.program_id))


def is_standing(decision: Decision | None) -> bool:
    """Whether a current decision still decides its pair (undo's ``withdrawn`` does not)."""
    return decision is not None and decision.verdict != Verdict.WITHDRAWN.value


def current_decisions(
    *,
    session: Session,
    proposal_ids: Iterable[int] | None = None,
    program_ids: Iterable[int] | None = None,
    standing_only: bool = False,
    limit: int | None = None,
) -> dict[Pair, Decision]:
    """The current decision of every pair (of these proposals / programs), by pair."""
    proposals = None if proposal_ids is None else list(proposal_ids)
    programs = None if program_ids is None else list(program_ids)
    if proposals == [] or programs == []:
        return {}
    query = select(Decision).where(col(Decision.id).in_(current_ids(proposal_ids=proposals, program_ids=programs)))
    if standing_only:
        query = query.where(col(Decision.verdict) != Verdict.WITHDRAWN.value)
    if limit is not None:
        query = query.limit(limit)
    return {(d.proposal_id, d.program_id): d for d in session.exec(query)}


def by_proposal(decisions: dict[Pair, Decision]) -> dict[int, dict[int, Decision]]:
    """Current decisions grouped as proposal id → program id → decision."""
    out: dict[int, dict[int, Decision]] = {}
    for (proposal_id, program_id), decision in decisions.items():
        out.setdefault(proposal_id, {})[program_id] = decision
    return out


def current_verdict_pairs(*, session: Session, proposal_ids: list[int] | None = None) -> dict[str, set[Pair]]:
    """Pairs by current verdict, as plain tuples (for the rematch)."""
    query = select(col(Decision.proposal_id), col(Decision.program_id), col(Decision.verdict)).where(
        col(Decision.id).in_(current_ids(proposal_ids=proposal_ids))
    )
    pairs: dict[str, set[Pair]] = {v.value: set() for v in Verdict}
    for proposal_id, program_id, verdict in session.exec(query):
        pairs.setdefault(verdict, set()).add((proposal_id, program_id))
    return pairs


def current_accepted(*, session: Session) -> list[Decision]:
    """The current decision of every pair whose current verdict is accepted."""
    query = select(Decision).where(
        col(Decision.id).in_(current_ids()), col(Decision.verdict) == Verdict.ACCEPTED.value
    )
    return list(session.exec(query))
