"""Proposals coming in: from the public form or the API, and on paper (an
import). Each is one command: one transaction with its event; the first
suggestions follow through the matching service (derived data, its own commit)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session

from models.audit import record_event
from models.outbox import enqueue
from models.proposals import ProposalImportReport, add_proposal, import_proposals
from models.tables import Proposal, ProposalCreate
from office.commands import NOBODY, Actor


def receive_proposal(*, session: Session, proposal_in: ProposalCreate, actor: Actor = NOBODY) -> tuple[Proposal, str]:
    """Store a submitted proposal with its receipt number, the event
    ``proposal.received`` and the receipt e-mail (the only moment the private
    status link is known), commit once; returns it and its status token."""
    proposal, token = add_proposal(session=session, proposal_in=proposal_in)
    enqueue(
        session=session, kind="receipt", to=proposal.email, secret=token, proposal_id=proposal.id,
        context={"receipt_number": proposal.receipt_number, "title": proposal.title,
                 "organization": proposal.organization, "representative": proposal.representative},
    )
    record_event(
        session=session, action="proposal.received", entity="proposal", entity_id=proposal.id or "",
        actor=actor.name, user_id=actor.user_id, detail={"receipt_number": proposal.receipt_number},
    )
    session.commit()
    session.refresh(proposal)
    return proposal, token


def import_paper_proposals(
    *, session: Session, proposals_in: Iterable[ProposalCreate], source_file: str = "", actor: Actor = NOBODY,
) -> ProposalImportReport:
    """Insert or update the records of a paper import in one transaction with
    its event (``proposals.import``); importing twice changes nothing."""
    report = import_proposals(session=session, proposals_in=proposals_in, source_file=source_file, actor=actor.name)
    session.commit()
    return report
