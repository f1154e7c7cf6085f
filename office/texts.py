"""The proposal text that is matched and embedded, read from the database in
one place (the matcher decides what of it counts: matcher.semantic.proposal_text)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from matcher import MatchIndex, ProposalText
from matcher.counting import Counted
from matcher.related import PairGraph, ProposalSpace
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


class CountedTexts:
    """The term counts of a run's proposal texts, kept for the steps after
    the ranking (related proposals, themes): the nightly run then tokenizes
    each text once. A text that is not among them (edited or submitted since
    the run read it) is counted when asked for, by the same index."""

    def __init__(self, index: MatchIndex, proposals: Sequence[ProposalText], counted: Counted):
        self.index = index
        # The related proposals' space and pair scores of every proposal, once
        # computed: the themes of the open ones read them (office.themes).
        self.pairs: tuple[ProposalSpace, PairGraph] | None = None
        counts, forms = counted
        self.known = {p: (c, f) for p, c, f in zip(proposals, counts, forms, strict=True)}

    def of(self, proposals: Sequence[ProposalText]) -> Counted:
        """The counts and written forms of ``proposals``, in their order."""
        missing = [p for p in dict.fromkeys(proposals) if p not in self.known]
        if missing:
            counts, forms = self.index.count_proposals(missing)
            self.known.update(zip(missing, zip(counts, forms, strict=True), strict=True))
        return [self.known[p][0] for p in proposals], [self.known[p][1] for p in proposals]
