"""Related proposals stored for the pages: the nightly run writes every
proposal's list under its run id (published with it, office.rematch), online
matching rewrites the lists a new submission changes (office.online). The
space is rebuilt over all proposals each time (matcher.related); about 0.4 s
for 1,000 proposals in lexical mode on this machine (docs/benchmarks.md).

The likely-duplicate verdict of a pair is computed here, once per stored row:
the same organisation or e-mail address (as typed again: NFKC, case and
spaces ignored) and :func:`matcher.duplicates.likely_duplicate` on the two texts.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, insert
from sqlmodel import Session, col, select

from matcher import MatchIndex, ProposalText
from matcher.duplicates import likely_duplicate
from matcher.embedder import query_key
from matcher.related import (
    DEFAULT_RELATED_K,
    PairGraph,
    ProposalSpace,
    Related,
    build_space,
    pair_graph,
    related_lists,
)
from matcher.text import proposal_text
from models.clock import utcnow
from models.db import engine_of
from models.suggestions import newest_run_id
from models.tables import Proposal, RelatedProposal
from office.embeddings import load_embeddings, store_embeddings
from office.texts import CountedTexts, proposal_texts

if TYPE_CHECKING:
    from matcher.embedder import Embedder

INSERT_CHUNK = 5000  # rows per executemany of a run

Row = dict[str, Any]


def _typed(text: str) -> str:
    """An organisation or address as typed again: NFKC, casefolded, no spaces."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True)
class Contact:
    """Who sent a proposal, as compared for duplicates."""

    organization: str
    email: str

    def same_sender(self, other: Contact) -> bool:
        return bool((self.organization and self.organization == other.organization)
                    or (self.email and self.email == other.email))


def contacts(session: Session) -> dict[int, Contact]:
    """Every proposal's organisation and address, normalised."""
    query = select(col(Proposal.id), col(Proposal.organization), col(Proposal.email))
    return {pk: Contact(_typed(org or ""), _typed(email or "")) for pk, org, email in session.exec(query) if pk is not None}


def _row(proposal: ProposalText, rank: int, found: Related, texts: dict[str, ProposalText],
         senders: dict[int, Contact]) -> Row:
    a, b = int(proposal.id), int(found.proposal_id)
    duplicate = (a in senders and b in senders and senders[a].same_sender(senders[b])
                 and likely_duplicate(proposal_text(proposal), proposal_text(texts[found.proposal_id]), found.lexical))
    return {"proposal_id": a, "related_id": b, "rank": rank, "score": found.score, "lexical": found.lexical,
            "semantic": found.semantic, "terms": list(found.terms), "duplicate": duplicate}


def related_rows(
    texts: Sequence[ProposalText], senders: dict[int, Contact], *, space: ProposalSpace, graph: PairGraph | None = None,
    k: int = DEFAULT_RELATED_K,
) -> dict[int, list[Row]]:
    """The related rows of each proposal, by id (``space``: of ``texts``; ``graph``: its pair scores, if at hand)."""
    by_id = {p.id: p for p in texts}
    out: dict[int, list[Row]] = {}
    for proposal, found in zip(texts, related_lists(space, k=k, graph=graph), strict=True):
        out[int(proposal.id)] = [_row(proposal, rank, r, by_id, senders) for rank, r in enumerate(found, 1)]
    return out


def _mode_of(index: MatchIndex) -> tuple[str, Embedder | None]:
    embedder = index.get_embedder()
    return ("semantic", embedder) if index.mode == "semantic" and embedder is not None else ("lexical", None)


def store_for_run(*, engine: Engine, run_id: int, index: MatchIndex, counts: CountedTexts | None = None) -> int:
    """Every proposal's related rows under the run (unpublished until the run
    is): the rematch calls it once its suggestions are written, with the
    run's ``counts``. Returns the rows written."""
    with Session(engine) as session:
        texts = proposal_texts(session=session)
        senders = contacts(session)
    mode, embedder = _mode_of(index)
    space = build_space(texts, mode=mode, embedder=embedder, counted=counts.of(texts) if counts is not None else None)
    graph = pair_graph(space)
    if counts is not None:  # the themes of the open proposals read these pair scores too
        counts.pairs = (space, graph)
    rows = [row for found in related_rows(texts, senders, space=space, graph=graph).values() for row in found]
    tag = {"match_run_id": run_id, "online_after_run_id": None, "created_at": utcnow()}
    for start in range(0, len(rows), INSERT_CHUNK):
        with engine.begin() as connection:
            connection.execute(insert(RelatedProposal), [{**r, **tag} for r in rows[start:start + INSERT_CHUNK]])
    return len(rows)


def _touched(lists: dict[int, list[Row]], new: set[int]) -> set[int]:
    """The proposals whose list a new one changes: the new ones, and every
    proposal that now lists one of them."""
    return new | {pid for pid, rows in lists.items() if any(r["related_id"] in new for r in rows)}


def _load_vectors(session: Session, embedder: Embedder, texts: list[ProposalText]) -> list[str]:
    """Fill the embedder's cache with the stored vectors when some proposal's
    is missing (a process that has not read them yet), so that only texts
    never embedded are embedded; returns the keys of those (to store)."""
    keys = [query_key(p, model_version=embedder.model_version) for p in texts]
    if all(key in embedder.cache for key in keys):
        return []
    load_embeddings(engine=engine_of(session), embedder=embedder)
    return [key for key in keys if key not in embedder.cache]


def relate_online(*, session: Session, index: MatchIndex, proposal_ids: Iterable[int]) -> int:
    """Rewrite, as online rows, the related lists of these new proposals and
    of the proposals that now list them; commits. Returns the rows written."""
    new = set(proposal_ids)
    if not new:
        return 0
    texts = proposal_texts(session=session)
    mode, embedder = _mode_of(index)
    missing = _load_vectors(session, embedder, texts) if embedder is not None else []
    lists = related_rows(texts, contacts(session), space=build_space(texts, mode=mode, embedder=embedder))
    if embedder is not None and missing:  # embedded just now: the next run finds them
        store_embeddings(engine=engine_of(session), embedder=embedder, keys=missing)
    touched = _touched(lists, new)
    rows = [row for pid in sorted(touched) for row in lists.get(pid, [])]
    session.execute(delete(RelatedProposal).where(
        col(RelatedProposal.proposal_id).in_(sorted(touched)), col(RelatedProposal.match_run_id).is_(None)))
    tag = {"match_run_id": None, "online_after_run_id": newest_run_id(session=session), "created_at": utcnow()}
    if rows:
        session.execute(insert(RelatedProposal), [{**r, **tag} for r in rows])
    session.commit()
    return len(rows)
