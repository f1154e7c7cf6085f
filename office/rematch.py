"""The nightly rematch: refit on the active programs, rank every proposal and
publish the new suggestions and outcomes atomically (models.suggestions says
how readers see them). One run at a time (the ``rematch`` batch lock); a
crash leaves the previous run published. See docs/rematch.md.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Integer, delete, func, update
from sqlmodel import Session, col, select

from matcher import MatchIndex, ProposalText
from matcher.counting import Counted
from matcher.embedder import query_key
from models.clock import utcnow
from models.labels import RunStatus
from models.locks import DEFAULT_STALE_AFTER, acquire, is_free, rowcount_of
from models.programs import active_program_records
from models.tables import MatchOutcome, MatchRun, RelatedProposal, Suggestion
from office.embeddings import EmbeddingWriter, load_embeddings
from office.online import Chunk, decision_context, full_ranking, ranked_rows
from office.related import store_for_run
from office.rows import DEFAULT_CHUNK_SIZE, DecisionContext, Row, outcome_row, rows_for_result
from office.texts import CountedTexts, all_proposal_texts
from office.themes import regroup as regroup_themes

if TYPE_CHECKING:
    from office.service import MatchingService

REMATCH_LOCK = "rematch"
STALE = "stale: the process running it stopped without finishing"
PUBLISHED_TABLES = (Suggestion, MatchOutcome, RelatedProposal)


@dataclass
class RematchReport:
    run_id: int
    n_proposals: int
    n_programs: int
    n_suggestions: int
    n_new: int
    duration_seconds: float
    mode: str = "lexical"
    n_embedded: int = 0  # texts run through the model (not found in the embedding cache)

    def summary(self) -> str:
        embedded = f", {self.n_embedded} texts embedded" if self.mode == "semantic" else ""
        return (
            f"run {self.run_id} ({self.mode}): {self.n_proposals} proposals × {self.n_programs} programs, "
            f"{self.n_suggestions} suggestions ({self.n_new} new){embedded} in {self.duration_seconds:.1f} s"
        )


# -- the run's rows --------------------------------------------------------------


def fit_ranked_rows(
    index: MatchIndex, records: list[Any], proposals: list[ProposalText], context: DecisionContext,
    top_k: int, chunk_size: int, counted: Counted | None = None,
) -> Iterator[Chunk]:
    """Rows per chunk from one ``fit_match`` pass: each proposal is tokenized
    once (none if ``counted`` is given) and counts in the IDF, as in ``kyodo match``.

    A proposal whose top-k holds a rejected pair (and may have programs below
    it) is ranked again deeper, so its top-k is filled from the next ranks;
    only those few proposals are tokenized a second time.
    """
    by_id = {p.id: p for p in proposals}
    results = index.fit_match(
        records, proposals, top_k=top_k, chunk_size=chunk_size, exemplars=context.exemplars(proposals),
        rejections=context.rejections(proposals), counted=counted,
    )
    rows: list[Row] = []
    outcomes: list[Row] = []
    deeper: list[ProposalText] = []
    count = 0
    for result in results:
        if context.needs_deeper(result, top_k):
            deeper.append(by_id[result.proposal_id])
        else:
            ranking = _ranking_of(index, by_id[result.proposal_id])
            rows.extend(rows_for_result(result, top_k=top_k, context=context, full_ranking=ranking))
            outcomes.append(outcome_row(result))
        count += 1
        if count >= chunk_size:
            yield _with_deeper(index, deeper, context, top_k, chunk_size, count, rows, outcomes)
            rows, outcomes, deeper, count = [], [], [], 0
    if count:
        yield _with_deeper(index, deeper, context, top_k, chunk_size, count, rows, outcomes)


def _ranking_of(index: MatchIndex, proposal: ProposalText) -> Callable[[], list[Any]]:
    return lambda: full_ranking(index, proposal)


def _with_deeper(
    index: MatchIndex, deeper: list[ProposalText], context: DecisionContext, top_k: int, chunk_size: int,
    count: int, rows: list[Row], outcomes: list[Row],
) -> Chunk:
    for _, more_rows, more_outcomes in ranked_rows(index, deeper, context, top_k, chunk_size):
        rows.extend(more_rows)
        outcomes.extend(more_outcomes)
    return count, rows, outcomes


# -- the run's lifecycle -----------------------------------------------------------


def recover_stale_runs(*, engine: Engine, stale_after: timedelta = DEFAULT_STALE_AFTER) -> int:
    """Mark failed the runs left ``running`` by a dead process (only when no
    live process holds the rematch lock) and delete their partial rows."""
    if not is_free(engine, REMATCH_LOCK, stale_after=stale_after):
        return 0
    return _fail_running_runs(engine, STALE)


def _fail_running_runs(engine: Engine, reason: str) -> int:
    with Session(engine) as session:
        query = select(col(MatchRun.id)).where(col(MatchRun.status) == RunStatus.RUNNING.value)
        run_ids = [run_id for run_id in session.exec(query) if run_id is not None]
        if not run_ids:
            return 0
        _fail(session, run_ids, reason)
        return len(run_ids)


def _fail(session: Session, run_ids: list[int], reason: str) -> None:
    """Delete the runs' rows and mark them failed, in one transaction."""
    for table in PUBLISHED_TABLES:
        session.execute(delete(table).where(col(table.match_run_id).in_(run_ids)))
    session.execute(
        update(MatchRun)
        .where(col(MatchRun.id).in_(run_ids), col(MatchRun.status) == RunStatus.RUNNING.value)
        .values(status=RunStatus.FAILED.value, finished_at=utcnow(), error=reason[:2000])
    )
    session.commit()


def _start_run(engine: Engine, top_k: int, mode: str) -> int:
    with Session(engine) as session:
        run = MatchRun(host=socket.gethostname(), pid=os.getpid(), top_k=top_k, mode=mode)
        session.add(run)
        session.commit()
        assert run.id is not None
        return run.id


def rematch(
    *, service: MatchingService, engine: Engine, top_k: int, chunk_size: int = DEFAULT_CHUNK_SIZE, n_jobs: int = 1,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    on_progress: Callable[[int, int], None] | None = None,
    after_chunk: Callable[[int, int], None] | None = None,
) -> RematchReport:
    """Refit on the active programs, rank every proposal and publish atomically.

    Raises :class:`models.locks.LockHeld` when another rematch runs. On any
    error the run is marked failed, its rows deleted and the previous run
    stays published. ``on_progress(done, total)`` follows the proposals;
    ``after_chunk(run_id, rows_written)`` runs after each committed chunk;
    ``n_jobs`` processes tokenize. The run row records the mode that ran. In
    semantic mode only texts missing from the embedding cache are embedded.
    """
    lock = acquire(engine, REMATCH_LOCK, stale_after=stale_after)
    try:
        _fail_running_runs(engine, STALE)
        index = service.new_index(top_k=top_k, n_jobs=n_jobs)
        run = _Run(engine, _start_run(engine, top_k, index.mode), lock.heartbeat, on_progress, after_chunk)
        try:
            report = run.execute(index, top_k, chunk_size)
            # The related proposals, published with the run.
            store_for_run(engine=engine, run_id=run.run_id, index=index, counts=run.counts)
            index.save(service.store.run_folder(run.run_id))
            _publish(engine, report, index.fingerprint())
        except BaseException as exc:
            with Session(engine) as session:
                _fail(session, [run.run_id], f"{type(exc).__name__}: {exc}")
            raise
        _clean_up(engine, run.run_id)
        service.store.remove_older(run.run_id)
        regroup_themes(engine=engine, index=index, counts=run.counts)  # after publication: the open proposals' themes
        return report
    finally:
        lock.release()


class _Run:
    """One run's writing: chunks of rows under its id, progress, the report."""

    def __init__(self, engine: Engine, run_id: int, heartbeat: Callable[[], None],
                 on_progress: Callable[[int, int], None] | None, after_chunk: Callable[[int, int], None] | None):
        self.engine, self.run_id, self.heartbeat = engine, run_id, heartbeat
        self.on_progress, self.after_chunk = on_progress, after_chunk
        self.written = self.new = self.done = 0
        self.keep_embeddings: Callable[[Chunk], None] | None = None
        self.counts: CountedTexts | None = None

    def execute(self, index: MatchIndex, top_k: int, chunk_size: int) -> RematchReport:
        started = time.perf_counter()
        with Session(self.engine) as session:
            records = active_program_records(session=session)
            if not records:
                raise LookupError("no active programs: import a catalogue first")
            context = decision_context(session)
        proposals = all_proposal_texts(self.engine)
        embedder = index.get_embedder()
        embedded_before = embedder.n_embedded if embedder else 0
        if embedder is not None:
            writer = EmbeddingWriter(engine=self.engine, embedder=embedder,
                                     stored=load_embeddings(engine=self.engine, embedder=embedder))
            self.keep_embeddings = _chunk_embeddings(index, writer, proposals)
        # Counted once for the ranking, the related proposals and the themes.
        counted = index.count_proposals(proposals)
        self.counts = CountedTexts(index, proposals, counted)
        for chunk in fit_ranked_rows(index, records, proposals, context, top_k, chunk_size, counted):
            self._write(chunk, len(proposals))
        self._redo_decided_meanwhile(index, proposals, context, top_k, chunk_size)
        n_embedded = 0
        if embedder is not None:
            n_embedded = embedder.n_embedded - embedded_before
            # Every chunk stored its own; this writes what none did (nothing, as the rows stand).
            writer.write([*index.passage_keys(),
                          *(query_key(p, model_version=embedder.model_version) for p in proposals)])
        return RematchReport(
            self.run_id, len(proposals), len(records), self.written, self.new, time.perf_counter() - started,
            mode=index.mode, n_embedded=n_embedded,
        )

    def _redo_decided_meanwhile(
        self, index: MatchIndex, proposals: list[ProposalText], started: DecisionContext, top_k: int, chunk_size: int,
    ) -> None:
        """Rank again, with the decisions as they are now, the proposals whose
        pairs were rejected or accepted while the run wrote its rows: a pair
        rejected meanwhile is not published and its place is refilled; one
        accepted meanwhile is kept. Decisions made after this, in the
        milliseconds before publication, show on the pages with their verdict
        until the next run (as every decision made after a run does)."""
        with Session(self.engine) as session:
            # Only the decisions: the published pairs (for is_new) are those read at the start.
            now = decision_context(session, with_previous=False)
        changed = [p for p in proposals if _verdicts(now, int(p.id)) != _verdicts(started, int(p.id))]
        if not changed:
            return
        now.previous = started.previous  # is_new stays relative to what was published before the run
        ids = [int(p.id) for p in changed]
        replaced = list(ranked_rows(index, changed, now, top_k, chunk_size))
        with self.engine.begin() as connection:
            for table in PUBLISHED_TABLES:
                connection.execute(
                    delete(table).where(col(table.match_run_id) == self.run_id, col(table.proposal_id).in_(ids))
                )
            for _, rows, outcomes in replaced:
                self._insert(connection, rows, outcomes)
            written, new = connection.execute(
                select(func.count(), func.coalesce(func.sum(func.cast(col(Suggestion.is_new), Integer)), 0))
                .where(col(Suggestion.match_run_id) == self.run_id)
            ).one()
        self.written, self.new = int(written), int(new)

    def _insert(self, connection: Connection, rows: list[Row], outcomes: list[Row]) -> None:
        """The rows under this run's id: a Core executemany per table, no ORM bookkeeping per row."""
        tag = {"match_run_id": self.run_id, "online_after_run_id": None, "created_at": utcnow()}
        for table, values in ((Suggestion, rows), (MatchOutcome, outcomes)):
            if values:
                connection.execute(table.__table__.insert(), [{**v, **tag} for v in values])  # type: ignore[union-attr]

    def _write(self, chunk: Chunk, total: int) -> None:
        count, rows, outcomes = chunk
        with self.engine.begin() as connection:
            self._insert(connection, rows, outcomes)
        if self.keep_embeddings:  # before the callbacks: a failure after this chunk keeps its vectors
            self.keep_embeddings(chunk)
        self.written += len(rows)
        self.new += sum(1 for row in rows if row["is_new"])
        self.done += count
        self.heartbeat()
        if self.on_progress:
            self.on_progress(self.done, total)
        if self.after_chunk:
            self.after_chunk(self.run_id, self.written)


def _chunk_embeddings(index: MatchIndex, writer: EmbeddingWriter, proposals: list[ProposalText]) -> Callable[[Chunk], None]:
    """What stores a chunk's vectors. After the first chunk: every vector the
    fit made (the programs', and the accepted and rejected pairings' proposals
    of the exemplar banks) with the chunk's proposals'; after each other one,
    the vectors of its proposals (one outcome row each)."""
    version = writer.embedder.model_version
    keys = {int(p.id): query_key(p, model_version=version) for p in proposals}
    first = True

    def keep(chunk: Chunk) -> None:
        nonlocal first
        if first:  # the keys of texts not embedded yet are skipped by the writer
            writer.write([*index.passage_keys(), *keys.values()])
            first = False
        else:
            writer.write(keys[row["proposal_id"]] for row in chunk[2] if row["proposal_id"] in keys)

    return keep


def _verdicts(context: DecisionContext, proposal_id: int) -> tuple[set[int], set[int]]:
    return set(context.rejected_of(proposal_id)), set(context.accepted.get(proposal_id, ()))


def _publish(engine: Engine, report: RematchReport, fingerprint: str) -> None:
    """The one short transaction that makes the new run the published one."""
    with Session(engine) as session:
        result = session.execute(
            update(MatchRun)
            .where(col(MatchRun.id) == report.run_id, col(MatchRun.status) == RunStatus.RUNNING.value)
            .values(
                status=RunStatus.SUCCEEDED.value, finished_at=utcnow(), n_proposals=report.n_proposals,
                n_programs=report.n_programs, n_suggestions=report.n_suggestions, n_new=report.n_new,
                duration_seconds=report.duration_seconds, fingerprint=fingerprint,
            )
        )
        session.commit()
        if rowcount_of(result) != 1:
            raise RuntimeError(f"run {report.run_id} was marked failed while it ran (lock taken over?)")


def _clean_up(engine: Engine, run_id: int) -> None:
    """After publication: drop older runs' rows and superseded online rows."""
    with Session(engine) as session:
        for table in PUBLISHED_TABLES:
            session.execute(
                delete(table).where(col(table.match_run_id).is_not(None), col(table.match_run_id) < run_id)
            )
            session.execute(
                delete(table).where(col(table.match_run_id).is_(None), col(table.online_after_run_id) < run_id)
            )
        session.commit()
