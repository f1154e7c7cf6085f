"""Proposals coming in: from the public form or the API, and on paper (an
import). Each is one command: one transaction with its event; the first
suggestions follow through the matching service (derived data, its own commit)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from sqlmodel import Session

from models.audit import record_event
from models.outbox import enqueue
from models.proposals import (
    ProposalImportReport,
    add_proposal,
    get_proposal_by_receipt,
    import_proposals,
)
from models.tables import Proposal, ProposalCreate
from models.tokens import hash_token, new_status_token
from office.commands import NOBODY, Actor


def receive_proposal(*, session: Session, proposal_in: ProposalCreate, actor: Actor = NOBODY) -> tuple[Proposal, str]:
    """Store a submitted proposal with its receipt number, the event
    ``proposal.received`` and the receipt e-mail (the only moment the private
    status link is known), commit once; returns it and its status token."""
    proposal, token = add_proposal(session=session, proposal_in=proposal_in)
    _send_link(session, proposal, token, kind="receipt", action="proposal.received", actor=actor)
    session.commit()
    session.refresh(proposal)
    return proposal, token


def _send_link(session: Session, proposal: Proposal, token: str, *, kind: str, action: str, actor: Actor) -> None:
    """The NPO's e-mail carrying its status link (the message's secret) and the
    command's event, in the caller's transaction."""
    enqueue(
        session=session, kind=kind, to=proposal.email, secret=token, proposal_id=proposal.id,
        context={"receipt_number": proposal.receipt_number, "title": proposal.title,
                 "organization": proposal.organization, "representative": proposal.representative},
    )
    record_event(
        session=session, action=action, entity="proposal", entity_id=proposal.id or "",
        actor=actor.name, user_id=actor.user_id, detail={"receipt_number": proposal.receipt_number},
    )


def import_paper_proposals(
    *, session: Session, proposals_in: Iterable[ProposalCreate], source_file: str = "", actor: Actor = NOBODY,
) -> ProposalImportReport:
    """Insert or update the records of a paper import in one transaction with
    its event (``proposals.import``); importing twice changes nothing."""
    report = import_proposals(session=session, proposals_in=proposals_in, source_file=source_file, actor=actor.name)
    session.commit()
    return report


# What a person types for the hyphen of 2026-000123 besides "-" (NFKC leaves these).
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−ー"), "-")


def _typed(text: str) -> str:
    """Typed again, an address or a number may differ in width and case from the
    first time (ＨＡＮＡＫＯ＠… against hanako@…): compared NFKC-normalised, casefolded."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def _receipt_number(text: str) -> str:
    """``2026-123`` as printed, ``2026-000123`` (models.proposals.receipt_number)."""
    year, _, number = _typed(text).translate(_DASHES).partition("-")
    digits = year.isascii() and year.isdigit() and number.isascii() and number.isdigit() and len(number) <= 12
    return f"{year}-{int(number):06d}" if digits else ""


def reissue_status_link(*, session: Session, receipt_number: str, email: str, actor: Actor = NOBODY) -> bool:
    """A new private status link for the proposal with this receipt number, if
    ``email`` is its address: the new token's hash replaces the old one (the old
    link stops working), the link goes out by e-mail only (kind ``status_link``),
    ``proposal.link_reissued`` is recorded, one commit. False, and nothing
    written, when they do not match; the caller must answer the same either way."""
    wanted, number = _typed(email), _receipt_number(receipt_number)
    proposal = get_proposal_by_receipt(session=session, receipt=number) if number else None
    if proposal is None or not wanted or _typed(proposal.email) != wanted:
        return False
    token = new_status_token()
    proposal.status_token_hash = hash_token(token)
    session.add(proposal)
    _send_link(session, proposal, token, kind="status_link", action="proposal.link_reissued", actor=actor)
    session.commit()
    return True
