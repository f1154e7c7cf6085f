"""Online matching: suggestions for stored proposals now (a new submission, a
paper import), from the current index, without waiting for the rematch."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert
from sqlmodel import Session, col

from matcher import MatchIndex, ProgramMatch, ProposalText
from matcher.embedder import query_key
from models.clock import utcnow
from models.db import engine_of
from models.decisions import current_verdict_pairs
from models.labels import Verdict
from models.suggestions import newest_run_id, visible_pairs
from models.tables import MatchOutcome, Suggestion
from office.embeddings import store_embeddings
from office.related import relate_online
from office.rows import (
    DEFAULT_CHUNK_SIZE,
    DecisionContext,
    Row,
    group,
    outcome_row,
    rows_for_result,
)
from office.texts import proposal_texts

if TYPE_CHECKING:
    from office.service import MatchingService

Chunk = tuple[int, list[Row], list[Row]]  # (proposals done, suggestion rows, outcome rows)


def decision_context(
    session: Session, proposal_ids: list[int] | None = None, *, with_previous: bool = True, run_only: bool = False,
) -> DecisionContext:
    """The current decisions and (unless ``with_previous`` is false) the
    published pairs of these proposals, or of all (``run_only``: those of
    the newest run, not the online rows that are about to be replaced)."""
    pairs = current_verdict_pairs(session=session, proposal_ids=proposal_ids)
    previous = visible_pairs(session=session, proposal_ids=proposal_ids, run_only=run_only) if with_previous else ()
    return DecisionContext(
        rejected=group(pairs[Verdict.REJECTED.value]),
        accepted=group(pairs[Verdict.ACCEPTED.value]),
        previous=group(previous),
    )


def full_ranking(index: MatchIndex, proposal: ProposalText) -> list[ProgramMatch]:
    """Every program, ranked for one proposal (for accepted pairs outside the top-k)."""
    return index.match([proposal], top_k=index.n_programs_)[0].matches


def ranked_rows(
    index: MatchIndex, proposals: list[ProposalText], context: DecisionContext, top_k: int, chunk_size: int,
) -> Iterator[Chunk]:
    """Rows per chunk from a fitted index. Proposals with rejected pairs are
    ranked deeper so that their top-k can be filled from the next ranks."""
    groups: dict[int, list[ProposalText]] = {}
    for proposal in proposals:
        groups.setdefault(context.depth(int(proposal.id), top_k, index.n_programs_), []).append(proposal)
    for depth, members in sorted(groups.items()):
        by_id = {p.id: p for p in members}
        rows: list[Row] = []
        outcomes: list[Row] = []
        for result in index.iter_match(members, top_k=depth, chunk_size=chunk_size):
            ranking = partial(full_ranking, index, by_id[result.proposal_id])
            rows.extend(rows_for_result(result, top_k=top_k, context=context, full_ranking=ranking))
            outcomes.append(outcome_row(result))
            if len(outcomes) >= chunk_size:
                yield len(outcomes), rows, outcomes
                rows, outcomes = [], []
        if outcomes:
            yield len(outcomes), rows, outcomes


def _tagged(rows: list[Row], **values: Any) -> list[Row]:
    for row in rows:
        row.update(values)
    return rows


def suggest_online(
    *, service: MatchingService, session: Session, proposal_ids: list[int], lexical_only: bool = False
) -> int:
    """Match stored proposals now from the current index; replaces their
    online suggestions and outcome and commits. Returns the rows written.

    ``lexical_only``: rank with the TF-IDF part of that index alone, no
    embedding (milliseconds): the public form answers with these and the
    semantic rows replace them once the response is sent (web.public).
    """
    if not proposal_ids:
        return 0
    index = service.current_index(session=session)
    if lexical_only:
        index = index.as_lexical()
    # Runs started before this point will not have seen these texts: rows
    # tagged with the newest run id stay visible after that run publishes.
    tag = {"match_run_id": None, "online_after_run_id": newest_run_id(session=session), "created_at": utcnow()}
    texts = proposal_texts(session=session, proposal_ids=proposal_ids)
    # New relative to the newest run: these proposals' own online rows (the
    # form's TF-IDF rows, replaced after the response) are not "seen before".
    context = decision_context(session, proposal_ids, run_only=True)
    rows: list[Row] = []
    outcomes: list[Row] = []
    for _, chunk_rows, chunk_outcomes in ranked_rows(index, texts, context, service.top_k, DEFAULT_CHUNK_SIZE):
        rows.extend(chunk_rows)
        outcomes.extend(chunk_outcomes)
    for table in (Suggestion, MatchOutcome):
        session.execute(delete(table).where(col(table.proposal_id).in_(proposal_ids), col(table.match_run_id).is_(None)))
    if rows:
        session.execute(insert(Suggestion), _tagged(rows, **tag))
    if outcomes:
        session.execute(insert(MatchOutcome), _tagged(outcomes, **tag))
    session.commit()
    embedder = index.get_embedder()
    if embedder is not None:  # the nightly rematch then finds these texts embedded
        keys = [query_key(p, model_version=embedder.model_version) for p in texts]
        store_embeddings(engine=engine_of(session), embedder=embedder, keys=keys)
    if not lexical_only:  # related proposals (the deferred full call does them when the form answers lexically)
        relate_online(session=session, index=index, proposal_ids=proposal_ids)
    return len(rows)
