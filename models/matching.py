"""Suggestions: what readers see, online matching of stored proposals from the
persisted index, and the nightly rematch with atomic publication.

Publication. Every batch suggestion carries the run that wrote it; readers
only read the rows of the newest *succeeded* run, plus online rows made since
that run started (``online_after_run_id >= run.id``), which win for their
proposal. The rematch writes its rows under a run in status ``running`` and
publishes them by flipping that one row to ``succeeded``: readers see the
previous run or the new one, never a mix. See docs/rematch.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, delete, exists, func, insert, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from matcher import MatchResult, ProgramIndex, ProgramMatch, ProposalText
from matcher.semantic import (
    DIM,
    MODEL_VERSION,
    Embedder,
    Exemplar,
    FusedIndex,
    embedding_text,
    proposal_text,
    resolve_mode,
    text_fingerprint,
)
from models.decisions import current_verdict_pairs
from models.labels import RunStatus, Verdict
from models.locks import DEFAULT_STALE_AFTER, acquire, is_free, rowcount_of
from models.programs import active_program_records
from models.tables import EmbeddingCache, MatchRun, Program, Proposal, Suggestion, utcnow

REMATCH_LOCK = "rematch"
# RECORDS_NOTE: corpus.ProgramRecord is a frozen dataclass; matcher.ProgramLike
# declares settable attributes, so mypy rejects it although it fits at run time.
STORED_TERMS = 10  # explanation terms kept per suggestion
DEFAULT_CHUNK_SIZE = 1000
MATCH_MODES = ("auto", "lexical", "semantic")  # the MATCH_MODE setting

# Either index: the rematch and online matching call the same methods on both.
Index = ProgramIndex | FusedIndex

log = logging.getLogger("kyodo.matching")
_NOTED: set[str] = set()
_RESOLVED: dict[str, tuple[str, Embedder | None]] = {}


def resolve_match_mode(setting: str) -> tuple[str, Embedder | None]:
    """The mode the engine runs in for the MATCH_MODE setting, and its embedder.

    ``auto`` is semantic when the extra is installed and its model verifies;
    when semantic is unavailable the engine runs lexical and logs one line
    (once per process) saying why.
    """
    if setting not in MATCH_MODES:
        raise ValueError(f"MATCH_MODE must be one of {MATCH_MODES}, not {setting!r}")
    if setting not in _RESOLVED:
        # Once per process: a refused model would otherwise be hashed again on every request.
        mode, embedder, note = resolve_mode(None if setting == "auto" else setting)
        if note:
            _note_once(note)
        _RESOLVED[setting] = (mode, embedder)
    return _RESOLVED[setting]


def _note_once(note: str) -> None:
    """Log a line about the engine's mode once per process (not per request)."""
    if note not in _NOTED:
        _NOTED.add(note)
        log.warning("%s", note)


def make_index(*, mode: str, embedder: Embedder | None, top_k: int = 5, n_jobs: int = 1) -> Index:
    """An unfitted index of the mode (see :func:`resolve_match_mode`)."""
    lexical = ProgramIndex(top_k=top_k, n_jobs=n_jobs)
    if mode == "semantic":
        return FusedIndex(lexical=lexical, embedder=embedder, top_k=top_k)
    return lexical


def is_semantic(setting: str) -> bool:
    """Whether the MATCH_MODE setting runs the semantic layer in this process."""
    return resolve_match_mode(setting)[0] == "semantic"


def index_mode(index: Index) -> str:
    return "semantic" if isinstance(index, FusedIndex) else "lexical"


def _lexical_of(index: Index) -> ProgramIndex:
    return index.lexical_ if isinstance(index, FusedIndex) else index


def index_fingerprint(index: Index) -> str:
    """Corpus and parameters of a fitted index; in semantic mode also the model
    and the fusion parameters, so two runs of different modes never compare equal."""
    lexical = _lexical_of(index)
    if not isinstance(index, FusedIndex):
        return lexical.fingerprint_
    digest = hashlib.sha256(lexical.fingerprint_.encode())
    digest.update(index.model_version_.encode())
    digest.update(repr(sorted(index._public_params().items())).encode())
    return digest.hexdigest()

# -- reading -----------------------------------------------------------------


def latest_run(*, session: Session) -> MatchRun | None:
    """The newest succeeded run: the one whose suggestions are published."""
    return session.exec(
        select(MatchRun)
        .where(col(MatchRun.status) == RunStatus.SUCCEEDED.value)
        .order_by(col(MatchRun.id).desc())
        .limit(1)
    ).first()


def _latest_run_id(session: Session) -> int:
    run_id = session.exec(
        select(func.max(col(MatchRun.id))).where(col(MatchRun.status) == RunStatus.SUCCEEDED.value)
    ).one()
    return int(run_id or 0)


def visible(latest_run_id: int) -> Any:
    """SQL condition selecting the published suggestions, given the newest succeeded run."""
    online = and_(
        col(Suggestion.match_run_id).is_(None),
        col(Suggestion.online_after_run_id) >= latest_run_id,
    )
    newer = aliased(Suggestion)
    has_online = exists().where(
        col(newer.proposal_id) == col(Suggestion.proposal_id),
        col(newer.match_run_id).is_(None),
        col(newer.online_after_run_id) >= latest_run_id,
    )
    return or_(online, and_(col(Suggestion.match_run_id) == latest_run_id, ~has_online))


def suggestions_for(*, session: Session, proposal_ids: Iterable[int]) -> dict[int, list[Suggestion]]:
    """The published suggestions of each proposal, best first."""
    ids = list(proposal_ids)
    out: dict[int, list[Suggestion]] = {i: [] for i in ids}
    if not ids:
        return out
    query = (
        select(Suggestion)
        .where(col(Suggestion.proposal_id).in_(ids), visible(_latest_run_id(session)))
        .order_by(col(Suggestion.proposal_id), col(Suggestion.rank))
    )
    for suggestion in session.exec(query):
        out[suggestion.proposal_id].append(suggestion)
    return out


def suggestions_for_proposal(*, session: Session, proposal_id: int) -> list[Suggestion]:
    return suggestions_for(session=session, proposal_ids=[proposal_id])[proposal_id]


def _visible_pairs(session: Session, proposal_ids: list[int] | None = None) -> set[tuple[int, int]]:
    query = select(col(Suggestion.proposal_id), col(Suggestion.program_id)).where(visible(_latest_run_id(session)))
    if proposal_ids is not None:
        query = query.where(col(Suggestion.proposal_id).in_(proposal_ids))
    return {(a, b) for a, b in session.exec(query)}


# -- the persisted index -----------------------------------------------------

_INDEX_CACHE: dict[str, Index] = {}
_INDEX_LOCK = threading.Lock()


def _load_index(directory: Path, embedder: Embedder | None) -> Index | None:
    """The index saved in ``directory``: a fused one (``semantic.json``) is
    loaded as such when an embedder is at hand, else as its TF-IDF part."""
    if (directory / "semantic.json").exists():
        if embedder is not None:
            return FusedIndex.load(directory, embedder=embedder)
        directory = directory / "lexical"
    if not (directory / "params.json").exists():
        return None
    return ProgramIndex.load(directory)


def _load_cached(directory: Path, embedder: Embedder | None = None) -> Index | None:
    key = f"{directory.resolve()}|{'semantic' if embedder is not None else 'lexical'}"
    with _INDEX_LOCK:
        if key in _INDEX_CACHE:
            return _INDEX_CACHE[key]
        try:
            index = _load_index(directory, embedder)
        except (OSError, ValueError, KeyError):
            return None  # removed while loading, an old format or another model: refit
        if index is None:
            return None
        _INDEX_CACHE.clear()  # one index per process is enough
        _INDEX_CACHE[key] = index
        return index


def _catalogue_key(session: Session) -> str:
    import hashlib

    digest = hashlib.sha256()
    rows = session.exec(
        select(col(Program.id), col(Program.updated_at)).where(col(Program.active).is_(True)).order_by(col(Program.id))
    )
    for pk, updated in rows:
        digest.update(f"{pk}:{updated.isoformat()};".encode())
    return digest.hexdigest()[:16]


def current_index(*, session: Session, index_path: str | Path, mode: str = "lexical") -> Index:
    """The index of the newest published run, loaded once per process; if there
    is none yet, one fitted on the active programs in ``mode`` (the MATCH_MODE
    setting), persisted for next time.

    The published run's index is used as it was saved (fused or TF-IDF), so
    online suggestions are scored as the published ones until the next run.
    """
    index_path = Path(index_path)
    resolved, embedder = resolve_match_mode(mode)
    run_id = _latest_run_id(session)
    if run_id:
        directory = index_path / f"run-{run_id}"
        index = _load_cached(directory, embedder)
        if index is not None:
            run_mode = "semantic" if (directory / "semantic.json").exists() else "lexical"
            if run_mode != resolved:
                _note_once(
                    f"the published run {run_id} was matched in {run_mode} mode, MATCH_MODE gives {resolved}: "
                    f"online matching runs {index_mode(index)} until the next rematch"
                )
            return index
    directory = index_path / f"catalogue-{_catalogue_key(session)}-{resolved}"
    index = _load_cached(directory, embedder)
    if index is None:
        records = active_program_records(session=session)
        if not records:
            raise LookupError("no active programs: import a catalogue first (kyodo programs import)")
        fresh = make_index(mode=resolved, embedder=embedder)
        stored = load_embeddings(engine=_engine_of(session), embedder=embedder) if embedder else set()
        fresh.fit(records)  # type: ignore[arg-type]  # see RECORDS_NOTE
        if isinstance(fresh, FusedIndex) and embedder is not None:
            new = [k for k in fresh.program_keys_ if k not in stored]
            store_embeddings(engine=_engine_of(session), embedder=embedder, keys=new)
        fresh.save(directory)
        index = _load_cached(directory, embedder)
        assert index is not None
    return index


# -- turning rankings into rows ------------------------------------------------


def _terms(match: ProgramMatch) -> list[list[Any]]:
    return [[t.term, round(t.weight, 5), t.field] for t in match.terms[:STORED_TERMS]]


def _scores(match: ProgramMatch | None) -> dict[str, Any]:
    """The semantic layer's columns of a row (all None in lexical mode)."""
    if match is None:
        return {
            "lexical_score": None, "semantic_score": None, "carried_by": None,
            "exemplar_proposal_id": None, "exemplar_score": None,
        }
    return {
        "lexical_score": match.lexical_score,
        "semantic_score": match.semantic_score,
        "carried_by": match.carried_by,
        "exemplar_proposal_id": int(match.exemplar_id) if match.exemplar_id is not None else None,
        "exemplar_score": match.exemplar_score,
    }


def _rows_for_result(
    result: MatchResult,
    *,
    top_k: int,
    rejected: set[int],
    accepted: set[int],
    previous: set[int],
    full_ranking: Callable[[], list[ProgramMatch]],
) -> list[dict[str, Any]]:
    """Top-k rows without rejected pairs, plus accepted pairs outside the top-k."""
    proposal_id = int(result.proposal_id)
    rows: list[dict[str, Any]] = []
    for match in result.matches:
        program_id = int(match.program_id)
        if program_id in rejected:
            continue
        if len(rows) >= top_k:
            break
        rows.append(
            {
                "proposal_id": proposal_id,
                "program_id": program_id,
                "score": float(match.score),
                "rank": len(rows) + 1,
                "terms": _terms(match),
                "is_new": program_id not in previous,
                "kept_by_decision": False,
                **_scores(match),
            }
        )
    missing = accepted - {r["program_id"] for r in rows}
    if missing and result.error is None:
        rows.extend(_kept_rows(proposal_id, missing, rejected, previous, full_ranking()))
    return rows


def _kept_rows(
    proposal_id: int,
    missing: set[int],
    rejected: set[int],
    previous: set[int],
    ranking: list[ProgramMatch],
) -> list[dict[str, Any]]:
    # Rank = place in the full ranking without rejected pairs; a program no
    # longer in the index (an earlier fiscal year) keeps score 0 at the end.
    rows = []
    place = {int(m.program_id): m for m in ranking}
    order = [int(m.program_id) for m in ranking if int(m.program_id) not in rejected]
    for program_id in sorted(missing, key=lambda p: order.index(p) if p in order else len(order)):
        match = place.get(program_id)
        rows.append(
            {
                "proposal_id": proposal_id,
                "program_id": program_id,
                "score": float(match.score) if match else 0.0,
                "rank": (order.index(program_id) + 1) if program_id in order else len(order) + 1,
                "terms": _terms(match) if match else [],
                "is_new": program_id not in previous,
                "kept_by_decision": True,
                **_scores(match),
            }
        )
    return rows


@dataclass
class _Context:
    """Decisions and previous pairs, grouped per proposal."""

    rejected: dict[int, set[int]]
    accepted: dict[int, set[int]]
    previous: dict[int, set[int]]

    @classmethod
    def load(cls, session: Session, proposal_ids: list[int] | None = None) -> _Context:
        pairs = current_verdict_pairs(session=session, proposal_ids=proposal_ids)
        return cls(
            rejected=_group(pairs[Verdict.REJECTED.value]),
            accepted=_group(pairs[Verdict.ACCEPTED.value]),
            previous=_group(_visible_pairs(session, proposal_ids)),
        )


def _group(pairs: Iterable[tuple[int, int]]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for proposal_id, program_id in pairs:
        out.setdefault(proposal_id, set()).add(program_id)
    return out


def _full_ranking(index: Index, proposal: ProposalText) -> list[ProgramMatch]:
    return index.match([proposal], top_k=len(_lexical_of(index).program_ids_))[0].matches


def _match_rows(
    index: Index,
    proposals: list[ProposalText],
    context: _Context,
    top_k: int,
    chunk_size: int,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(proposal count, rows) per chunk. Proposals with rejected pairs are ranked
    deeper so the top-k can be filled from the next ranks."""
    n_programs = len(_lexical_of(index).program_ids_)
    groups: dict[int, list[ProposalText]] = {}
    for proposal in proposals:
        depth = min(top_k + len(context.rejected.get(int(proposal.id), ())), n_programs)
        groups.setdefault(depth, []).append(proposal)
    empty: set[int] = set()
    for depth, members in sorted(groups.items()):
        rows: list[dict[str, Any]] = []
        count = 0
        by_id = {p.id: p for p in members}
        for result in index.iter_match(members, top_k=depth, chunk_size=chunk_size):
            pid = int(result.proposal_id)
            rows.extend(
                _rows_for_result(
                    result,
                    top_k=top_k,
                    rejected=context.rejected.get(pid, empty),
                    accepted=context.accepted.get(pid, empty),
                    previous=context.previous.get(pid, empty),
                    full_ranking=partial(_full_ranking, index, by_id[result.proposal_id]),
                )
            )
            count += 1
            if count >= chunk_size:
                yield count, rows
                rows, count = [], 0
        if count:
            yield count, rows


def _exemplars(proposals: list[ProposalText], context: _Context) -> list[Exemplar]:
    """The accepted pairings (current decisions) as exemplars for the semantic
    layer: each accepted proposal's text stands for its program."""
    by_id = {p.id: p for p in proposals}
    return [
        Exemplar(str(program_id), by_id[str(proposal_id)])
        for proposal_id, program_ids in sorted(context.accepted.items())
        if str(proposal_id) in by_id
        for program_id in sorted(program_ids)
    ]


def _fit_match_rows(
    index: Index,
    records: list[Any],
    proposals: list[ProposalText],
    context: _Context,
    top_k: int,
    chunk_size: int,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(proposal count, rows) per chunk from one ``fit_match`` pass: each
    proposal is tokenized once and counts in the IDF, as in ``kyodo match``.

    A proposal whose top-k holds a rejected pair (and may have programs
    below it) is ranked again deeper, so its top-k is filled from the next
    ranks; only those few proposals are tokenized a second time.
    """
    by_id = {p.id: p for p in proposals}
    empty: set[int] = set()
    rows: list[dict[str, Any]] = []
    deeper: list[ProposalText] = []
    count = 0
    if isinstance(index, FusedIndex):
        results = index.fit_match(
            records, proposals, top_k=top_k, chunk_size=chunk_size, exemplars=_exemplars(proposals, context)
        )
    else:
        results = index.fit_match(records, proposals, top_k=top_k, chunk_size=chunk_size)
    for result in results:
        pid = int(result.proposal_id)
        rejected = context.rejected.get(pid, empty)
        if len(result.matches) >= top_k and any(int(m.program_id) in rejected for m in result.matches):
            deeper.append(by_id[result.proposal_id])
        else:
            rows.extend(
                _rows_for_result(
                    result,
                    top_k=top_k,
                    rejected=rejected,
                    accepted=context.accepted.get(pid, empty),
                    previous=context.previous.get(pid, empty),
                    full_ranking=partial(_full_ranking, index, by_id[result.proposal_id]),
                )
            )
        count += 1
        if count >= chunk_size:
            rows.extend(row for _, chunk in _match_rows(index, deeper, context, top_k, chunk_size) for row in chunk)
            yield count, rows
            rows, deeper, count = [], [], 0
    if count:
        rows.extend(row for _, chunk in _match_rows(index, deeper, context, top_k, chunk_size) for row in chunk)
        yield count, rows


# -- online matching ------------------------------------------------------------


def suggest_online(
    *,
    session: Session,
    proposal_ids: list[int],
    index_path: str | Path,
    top_k: int = 5,
    mode: str = "lexical",
    lexical_only: bool = False,
) -> int:
    """Match stored proposals now, from the current index (``mode``: the
    MATCH_MODE setting, see :func:`current_index`); replaces their online
    suggestions and commits. Returns the number of rows written.

    ``lexical_only``: rank with the TF-IDF part of that index alone, no
    embedding (milliseconds): the public form answers with these and the
    semantic rows replace them once the response is sent (web.public).
    """
    if not proposal_ids:
        return 0
    index = current_index(session=session, index_path=index_path, mode=mode)
    if lexical_only:
        index = _lexical_of(index)
    # Runs started before this point will not have seen these texts: rows
    # tagged with the newest run id stay visible after that run publishes.
    newest_run = int(session.exec(select(func.max(col(MatchRun.id)))).one() or 0)
    texts = [
        ProposalText(id=str(pk), title=title, body=body)
        for pk, title, body in session.exec(
            select(col(Proposal.id), col(Proposal.title), col(Proposal.body)).where(col(Proposal.id).in_(proposal_ids))
        )
    ]
    context = _Context.load(session, proposal_ids)
    rows = [row for _, chunk in _match_rows(index, texts, context, top_k, DEFAULT_CHUNK_SIZE) for row in chunk]
    session.execute(
        delete(Suggestion).where(
            col(Suggestion.proposal_id).in_(proposal_ids),
            col(Suggestion.match_run_id).is_(None),
        )
    )
    if rows:
        now = utcnow()
        for row in rows:
            row.update(match_run_id=None, online_after_run_id=newest_run, created_at=now)
        session.execute(insert(Suggestion), rows)
    session.commit()
    if isinstance(index, FusedIndex):
        # The nightly rematch then finds these texts embedded.
        embedder = index._embedder()
        keys = [_query_key(embedder.model_version, p) for p in texts]
        store_embeddings(engine=_engine_of(session), embedder=embedder, keys=keys)
    return len(rows)


# -- the embedding cache ------------------------------------------------------------


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _query_key(model_version: str, proposal: ProposalText) -> str:
    return text_fingerprint(embedding_text(proposal_text(proposal)), role="query", model_version=model_version)


def _passage_key(model_version: str, text: str) -> str:
    return text_fingerprint(embedding_text(text), role="passage", model_version=model_version)


def load_embeddings(*, engine: Engine, embedder: Embedder) -> set[str]:
    """Fill the embedder's cache with every vector stored for its model version;
    returns their fingerprints."""
    keys: list[str] = []
    vectors: list[np.ndarray] = []
    with Session(engine) as session:
        rows = session.exec(
            select(col(EmbeddingCache.fingerprint), col(EmbeddingCache.vector)).where(
                col(EmbeddingCache.model_version) == embedder.model_version
            )
        )
        for key, blob in rows:
            keys.append(key)
            vectors.append(np.frombuffer(blob, dtype=np.float32))
    if keys:
        embedder.add_to_cache(keys, np.vstack(vectors).reshape(len(keys), DIM))
    return set(keys)


def _stored_keys(session: Session, model_version: str, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        found.update(
            session.exec(
                select(col(EmbeddingCache.fingerprint)).where(
                    col(EmbeddingCache.model_version) == model_version,
                    col(EmbeddingCache.fingerprint).in_(keys[start : start + 500]),
                )
            )
        )
    return found


def store_embeddings(*, engine: Engine, embedder: Embedder, keys: Iterable[str]) -> int:
    """Write the embedder's cached vectors of ``keys`` that the table lacks;
    returns the number of rows written."""
    present, matrix = embedder.cached(dict.fromkeys(keys))
    if not present:
        return 0
    with Session(engine) as session:
        stored = _stored_keys(session, embedder.model_version, present)
        now = utcnow()
        rows = [
            {"fingerprint": key, "model_version": embedder.model_version, "vector": vector.astype(np.float32).tobytes(),
             "created_at": now}
            for key, vector in zip(present, matrix, strict=True)
            if key not in stored
        ]
        if rows:
            session.execute(insert(EmbeddingCache), rows)
            session.commit()
    return len(rows)


@dataclass
class EmbeddingReport:
    n_texts: int
    n_cached: int
    n_embedded: int


def rebuild_embeddings(
    *,
    engine: Engine,
    embedder: Embedder,
    batch_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
) -> EmbeddingReport:
    """Embed every active program and every proposal for the embedder's model
    version, skipping texts already stored, one committed batch at a time (an
    interrupted rebuild resumes where it stopped). ``on_progress(n)`` after
    each batch of ``n`` texts, cached ones included."""
    with Session(engine) as session:
        records = active_program_records(session=session)
    texts: list[tuple[str, str, str]] = []  # (key, role, text)
    fused = FusedIndex(embedder=embedder)
    for record in records:
        text = fused.program_text(record)  # type: ignore[arg-type]  # see RECORDS_NOTE
        texts.append((_passage_key(embedder.model_version, text), "passage", text))
    for proposal in _load_proposals(engine):
        texts.append((_query_key(embedder.model_version, proposal), "query", proposal_text(proposal)))
    texts = list({key: (key, role, text) for key, role, text in texts}.values())
    with Session(engine) as session:
        stored = _stored_keys(session, embedder.model_version, [k for k, _, _ in texts])
    if on_progress and stored:
        on_progress(len(stored))
    todo = [t for t in texts if t[0] not in stored]
    embedded = 0
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        for role in ("passage", "query"):
            same = [text for _, r, text in batch if r == role]
            if same:
                before = embedder.n_embedded
                embedder.embed(same, role=role)
                embedded += embedder.n_embedded - before
        store_embeddings(engine=engine, embedder=embedder, keys=[k for k, _, _ in batch])
        if on_progress:
            on_progress(len(batch))
    return EmbeddingReport(n_texts=len(texts), n_cached=len(stored), n_embedded=embedded)


def prune_embeddings(*, engine: Engine, model_version: str = MODEL_VERSION) -> int:
    """Delete cached vectors nobody reads: those of another model version, and
    those of texts no active program and no proposal has any more (edited or
    deleted texts, retired programs). Returns the number of rows deleted.
    Needs no model: fingerprints are hashes of the texts."""
    fused = FusedIndex()
    with Session(engine) as session:
        records = active_program_records(session=session)
    used = {_passage_key(model_version, fused.program_text(r)) for r in records}  # type: ignore[arg-type]  # see RECORDS_NOTE
    used.update(_query_key(model_version, p) for p in _load_proposals(engine))
    with Session(engine) as session:
        stored = session.exec(
            select(col(EmbeddingCache.fingerprint)).where(col(EmbeddingCache.model_version) == model_version)
        ).all()
        unused = [key for key in stored if key not in used]
        deleted = rowcount_of(
            session.execute(delete(EmbeddingCache).where(col(EmbeddingCache.model_version) != model_version))
        )
        for start in range(0, len(unused), 500):
            session.execute(
                delete(EmbeddingCache).where(
                    col(EmbeddingCache.model_version) == model_version,
                    col(EmbeddingCache.fingerprint).in_(unused[start : start + 500]),
                )
            )
        session.commit()
    return deleted + len(unused)


# -- the rematch ------------------------------------------------------------------


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


def recover_stale_runs(*, engine: Engine, stale_after: timedelta = DEFAULT_STALE_AFTER) -> int:
    """Mark failed the runs left ``running`` by a dead process (only when no
    live process holds the rematch lock) and delete their partial rows."""
    if not is_free(engine, REMATCH_LOCK, stale_after=stale_after):
        return 0
    return _fail_running_runs(engine, "stale: the process running it stopped without finishing")


def _fail_running_runs(engine: Engine, reason: str, *, keep: int | None = None) -> int:
    with Session(engine) as session:
        query = select(col(MatchRun.id)).where(col(MatchRun.status) == RunStatus.RUNNING.value)
        if keep is not None:
            query = query.where(col(MatchRun.id) != keep)
        run_ids = list(session.exec(query))
        if not run_ids:
            return 0
        session.execute(delete(Suggestion).where(col(Suggestion.match_run_id).in_(run_ids)))
        session.execute(
            update(MatchRun)
            .where(col(MatchRun.id).in_(run_ids))
            .values(status=RunStatus.FAILED.value, finished_at=utcnow(), error=reason)
        )
        session.commit()
        return len(run_ids)


def _start_run(engine: Engine, top_k: int, mode: str) -> int:
    with Session(engine) as session:
        run = MatchRun(host=socket.gethostname(), pid=os.getpid(), top_k=top_k, mode=mode)
        session.add(run)
        session.commit()
        assert run.id is not None
        return run.id


def _load_proposals(engine: Engine) -> list[ProposalText]:
    with Session(engine) as session:
        return [
            ProposalText(id=str(pk), title=title, body=body)
            for pk, title, body in session.exec(
                select(col(Proposal.id), col(Proposal.title), col(Proposal.body)).order_by(col(Proposal.id))
            )
        ]


def rematch(
    *,
    engine: Engine,
    index_path: str | Path,
    top_k: int = 5,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
    after_chunk: Callable[[int, int], None] | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    n_jobs: int = 1,
    mode: str = "lexical",
) -> RematchReport:
    """Refit on the active programs, rank every proposal and publish atomically.

    Raises :class:`models.locks.LockHeld` when another rematch runs. On any
    error the run is marked failed, its rows deleted and the previous run
    stays published. ``on_progress(done, total)`` follows the proposals;
    ``after_chunk(run_id, rows_written)`` runs after each committed chunk.
    ``n_jobs`` processes tokenize (see :func:`matcher.tokenize.tokenize_many`).
    ``mode`` is the MATCH_MODE setting (see :func:`resolve_match_mode`); the
    run row records the mode that actually ran. In semantic mode only texts
    missing from the embedding cache are embedded, and they are added to it.
    """
    resolved, embedder = resolve_match_mode(mode)
    lock = acquire(engine, REMATCH_LOCK, stale_after=stale_after)
    try:
        _fail_running_runs(engine, "stale: the process running it stopped without finishing")
        run_id = _start_run(engine, top_k, resolved)
        try:
            index = make_index(mode=resolved, embedder=embedder, top_k=top_k, n_jobs=n_jobs)
            return _run(engine, run_id, index, Path(index_path), chunk_size, on_progress, after_chunk, lock.heartbeat)
        except BaseException as exc:
            _fail_run(engine, run_id, f"{type(exc).__name__}: {exc}")
            raise
    finally:
        lock.release()


def _run(
    engine: Engine,
    run_id: int,
    index: Index,
    index_path: Path,
    chunk_size: int,
    on_progress: Callable[[int, int], None] | None,
    after_chunk: Callable[[int, int], None] | None,
    heartbeat: Callable[[], None],
) -> RematchReport:
    started = time.perf_counter()
    top_k = index.top_k
    with Session(engine) as session:
        records = active_program_records(session=session)
        if not records:
            raise LookupError("no active programs: import a catalogue first")
        context = _Context.load(session)
    proposals = _load_proposals(engine)
    embedder = index._embedder() if isinstance(index, FusedIndex) else None
    if embedder is not None:
        stored = load_embeddings(engine=engine, embedder=embedder)
        embedded_before = embedder.n_embedded
    table = Suggestion.__table__  # type: ignore[attr-defined]
    written = new = done = 0
    for count, rows in _fit_match_rows(index, records, proposals, context, top_k, chunk_size):
        now = utcnow()
        for row in rows:
            row.update(match_run_id=run_id, online_after_run_id=None, created_at=now)
        # A Core executemany on the table: no ORM bookkeeping per row.
        with engine.begin() as connection:
            if rows:
                connection.execute(table.insert(), rows)
        written += len(rows)
        new += sum(1 for row in rows if row["is_new"])
        done += count
        heartbeat()
        if on_progress:
            on_progress(done, len(proposals))
        if after_chunk:
            after_chunk(run_id, written)
    n_embedded = 0
    if embedder is not None:
        n_embedded = embedder.n_embedded - embedded_before
        assert isinstance(index, FusedIndex)
        used = [*index.program_keys_, *(_query_key(embedder.model_version, p) for p in proposals)]
        store_embeddings(engine=engine, embedder=embedder, keys=[k for k in used if k not in stored])
    index.save(index_path / f"run-{run_id}")
    report = RematchReport(
        run_id, len(proposals), len(records), written, new, time.perf_counter() - started,
        mode=index_mode(index), n_embedded=n_embedded,
    )
    _publish(engine, report, index_fingerprint(index))
    _clean_up(engine, run_id, index_path)
    return report


def _publish(engine: Engine, report: RematchReport, fingerprint: str) -> None:
    """The one short transaction that makes the new run the published one."""
    with Session(engine) as session:
        result = session.execute(
            update(MatchRun)
            .where(col(MatchRun.id) == report.run_id, col(MatchRun.status) == RunStatus.RUNNING.value)
            .values(
                status=RunStatus.SUCCEEDED.value,
                finished_at=utcnow(),
                n_proposals=report.n_proposals,
                n_programs=report.n_programs,
                n_suggestions=report.n_suggestions,
                n_new=report.n_new,
                duration_seconds=report.duration_seconds,
                fingerprint=fingerprint,
            )
        )
        session.commit()
        if rowcount_of(result) != 1:
            raise RuntimeError(f"run {report.run_id} was marked failed while it ran (lock taken over?)")


def _clean_up(engine: Engine, run_id: int, index_path: Path) -> None:
    """After publication: drop older runs' rows, superseded online rows, old index folders."""
    with Session(engine) as session:
        session.execute(
            delete(Suggestion).where(
                col(Suggestion.match_run_id).is_not(None),
                col(Suggestion.match_run_id) < run_id,
            )
        )
        session.execute(
            delete(Suggestion).where(
                col(Suggestion.match_run_id).is_(None),
                col(Suggestion.online_after_run_id) < run_id,
            )
        )
        session.commit()
    keep = f"run-{run_id}"
    for folder in index_path.glob("*-*"):
        if folder.is_dir() and folder.name != keep and folder.name.split("-")[0] in ("run", "catalogue"):
            shutil.rmtree(folder, ignore_errors=True)


def _fail_run(engine: Engine, run_id: int, error: str) -> None:
    with Session(engine) as session:
        session.execute(delete(Suggestion).where(col(Suggestion.match_run_id) == run_id))
        session.execute(
            update(MatchRun)
            .where(col(MatchRun.id) == run_id, col(MatchRun.status) == RunStatus.RUNNING.value)
            .values(status=RunStatus.FAILED.value, finished_at=utcnow(), error=error[:2000])
        )
        session.commit()
