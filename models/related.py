"""Related and duplicate proposals: the typed reads of what the matcher
stored (``related_proposal``, published by the suggestions' rule,
:func:`models.suggestions.visible`), the coordinator's 重複ではない marks and
the merge marker (``proposal.merged_into_id``).

A pair is a *likely duplicate* when a run stored it with ``duplicate`` set
(seen from either side), no coordinator marked it 重複ではない, and neither
proposal has been merged into another. The marks live in their own table,
which no run writes: the flag stays off across rematches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import or_
from sqlmodel import Session, col, select

from models.suggestions import latest_run_id, visible
from models.tables import AuditEvent, NotDuplicate, Proposal, RelatedProposal

MERGE_ACTION = "proposal.merge"  # the event of office.merging.merge_proposals


def _published(latest: int) -> Any:
    # The same publication rule as suggestions: the table has the same columns.
    return visible(latest, cast(Any, RelatedProposal))


@dataclass(frozen=True)
class RelatedItem:
    """One stored related proposal, with the other proposal's row and whether
    the pair is a likely duplicate now."""

    row: RelatedProposal
    other: Proposal
    duplicate: bool


def pair_key(a: int, b: int) -> tuple[int, int]:
    """A pair of proposals the way NotDuplicate stores it: the lower id first.

    >>> pair_key(9, 4)
    (4, 9)
    """
    return (a, b) if a < b else (b, a)


def related_for(*, session: Session, proposal_id: int) -> list[RelatedItem]:
    """The published related proposals of one proposal, best first."""
    query = (
        select(RelatedProposal, Proposal)
        .join(Proposal, col(Proposal.id) == col(RelatedProposal.related_id))
        .where(col(RelatedProposal.proposal_id) == proposal_id, _published(latest_run_id(session=session)))
        .order_by(col(RelatedProposal.rank))
    )
    rows = list(session.exec(query))
    duplicates = duplicates_of(session=session, proposal_ids=[proposal_id])[proposal_id]
    return [RelatedItem(row, other, other.id in duplicates) for row, other in rows]


def duplicates_of(*, session: Session, proposal_ids: Iterable[int]) -> dict[int, set[int]]:
    """The likely duplicates of each proposal (ids of the other proposals),
    from the stored pairs of either side; empty sets for the rest. Three
    queries whatever the data (the pages' query counts stay fixed)."""
    ids = list(proposal_ids)
    out: dict[int, set[int]] = {i: set() for i in ids}
    if not ids:
        return out
    query = select(col(RelatedProposal.proposal_id), col(RelatedProposal.related_id)).where(
        col(RelatedProposal.duplicate),
        or_(col(RelatedProposal.proposal_id).in_(ids), col(RelatedProposal.related_id).in_(ids)),
        _published(latest_run_id(session=session)),
    )
    pairs = {pair_key(a, b) for a, b in session.exec(query)}
    members = {i for pair in pairs for i in pair}
    merged = set(session.exec(select(col(Proposal.id)).where(
        col(Proposal.id).in_(members), col(Proposal.merged_into_id).is_not(None))))
    dismissed = not_duplicate_pairs(session=session, proposal_ids=members)
    for a, b in pairs - dismissed:
        if a in merged or b in merged:
            continue
        if a in out:
            out[a].add(b)
        if b in out:
            out[b].add(a)
    return out


def not_duplicate_pairs(*, session: Session, proposal_ids: Iterable[int]) -> set[tuple[int, int]]:
    """The pairs marked 重複ではない that involve these proposals (lower id first)."""
    ids = list(proposal_ids)
    query = select(col(NotDuplicate.proposal_id), col(NotDuplicate.other_id)).where(
        or_(col(NotDuplicate.proposal_id).in_(ids), col(NotDuplicate.other_id).in_(ids))
    )
    return {(a, b) for a, b in session.exec(query)}


def add_not_duplicate(
    *, session: Session, proposal_id: int, other_id: int, actor: str = "", user_id: int | None = None
) -> NotDuplicate | None:
    """Mark the pair 重複ではない (flush only); None when it was marked already."""
    a, b = pair_key(proposal_id, other_id)
    found = session.exec(
        select(NotDuplicate).where(col(NotDuplicate.proposal_id) == a, col(NotDuplicate.other_id) == b)
    ).first()
    if found is not None:
        return None
    mark = NotDuplicate(proposal_id=a, other_id=b, actor=actor, user_id=user_id)
    session.add(mark)
    session.flush()
    return mark


def remove_not_duplicate(*, session: Session, proposal_id: int, other_id: int) -> NotDuplicate | None:
    """Withdraw the pair's 重複ではない (flush only): the removed mark, None when
    there was none. The stored duplicate flag shows again if a run set it."""
    a, b = pair_key(proposal_id, other_id)
    found = session.exec(
        select(NotDuplicate).where(col(NotDuplicate.proposal_id) == a, col(NotDuplicate.other_id) == b)
    ).first()
    if found is not None:
        session.delete(found)
        session.flush()
    return found


def not_duplicate_others(*, session: Session, proposal_id: int) -> list[int]:
    """The proposals marked 重複ではない with this one, in the order marked (one query)."""
    query = select(NotDuplicate).where(
        or_(col(NotDuplicate.proposal_id) == proposal_id, col(NotDuplicate.other_id) == proposal_id)
    ).order_by(col(NotDuplicate.id))
    return [m.other_id if m.proposal_id == proposal_id else m.proposal_id for m in session.exec(query)]


def merged_from(*, session: Session, proposal_id: int) -> list[Proposal]:
    """The proposals merged into this one, oldest first."""
    query = select(Proposal).where(col(Proposal.merged_into_id) == proposal_id).order_by(col(Proposal.id))
    return list(session.exec(query))


def proposals_by_id(*, session: Session, ids: Iterable[int]) -> dict[int, Proposal]:
    # One query even for no ids: the proposal page's query count stays fixed.
    wanted = list(ids)
    return {p.id: p for p in session.exec(select(Proposal).where(col(Proposal.id).in_(wanted))) if p.id is not None}


def last_merge_event(*, session: Session, proposal_id: int) -> AuditEvent | None:
    """The newest merge event of this (merged) proposal: what an unmerge undoes."""
    query = select(AuditEvent).where(
        col(AuditEvent.action) == MERGE_ACTION, col(AuditEvent.entity) == "proposal",
        col(AuditEvent.entity_id) == str(proposal_id),
    )
    return session.exec(query.order_by(col(AuditEvent.id).desc()).limit(1)).first()
