"""The proposal text that is matched and embedded, read from the database in
one place (the matcher decides what of it counts: matcher.semantic.proposal_text)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from matcher import ProposalText
from models.tables import Proposal


def proposal_texts(*, session: Session, proposal_ids: Iterable[int] | None = None) -> list[ProposalText]:
    """The matcher's view of stored proposals (all, or these), in id order."""
    query = select(col(Proposal.id), col(Proposal.title), col(Proposal.body)).order_by(col(Proposal.id))
    if proposal_ids is not None:
        query = query.where(col(Proposal.id).in_(list(proposal_ids)))
    return [ProposalText(id=str(pk), title=title, body=body) for pk, title, body in session.exec(query)]


def all_proposal_texts(engine: Engine) -> list[ProposalText]:
    """Every proposal's text, in a session of its own (the batch jobs)."""
    with Session(engine) as session:
        return proposal_texts(session=session)
