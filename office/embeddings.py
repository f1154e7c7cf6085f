"""The embedding cache of the semantic layer: e5 vectors stored by text
fingerprint and model version, so the rematch embeds only new or changed texts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, delete, insert
from sqlmodel import Session, col, select

from matcher.embedder import passage_key, query_key
from matcher.semantic import DIM, MODEL_VERSION, Embedder, FusedIndex, proposal_text
from models.locks import rowcount_of
from models.programs import active_program_records
from models.tables import EmbeddingCache, utcnow
from office.texts import all_proposal_texts

IN_BATCH = 500  # keys per IN (...) query


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


def stored_keys(session: Session, model_version: str, keys: list[str]) -> set[str]:
    """Which of ``keys`` the table holds for the model version."""
    found: set[str] = set()
    for start in range(0, len(keys), IN_BATCH):
        found.update(
            session.exec(
                select(col(EmbeddingCache.fingerprint)).where(
                    col(EmbeddingCache.model_version) == model_version,
                    col(EmbeddingCache.fingerprint).in_(keys[start : start + IN_BATCH]),
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
        stored = stored_keys(session, embedder.model_version, present)
        now = utcnow()
        rows = [
            {"fingerprint": key, "model_version": embedder.model_version,
             "vector": vector.astype(np.float32).tobytes(), "created_at": now}
            for key, vector in zip(present, matrix, strict=True)
            if key not in stored
        ]
        if rows:
            session.execute(insert(EmbeddingCache), rows)
            session.commit()
    return len(rows)


class EmbeddingWriter:
    """Stores the vectors a run computes as it goes (after each chunk), so a
    run that fails or is killed later keeps those it paid for; each key is
    written once (``stored``: the keys the table already holds)."""

    def __init__(self, *, engine: Engine, embedder: Embedder, stored: set[str]):
        self.engine, self.embedder, self.stored = engine, embedder, set(stored)

    def write(self, keys: Iterable[str]) -> int:
        """Store the cached vectors of ``keys`` not yet stored; the rows written."""
        new = [key for key in dict.fromkeys(keys) if key not in self.stored]
        if not new:
            return 0
        written = store_embeddings(engine=self.engine, embedder=self.embedder, keys=new)
        self.stored.update(key for key in new if key in self.embedder.cache)
        return written


@dataclass
class EmbeddingReport:
    n_texts: int
    n_cached: int
    n_embedded: int


def _texts_to_embed(engine: Engine, model_version: str) -> list[tuple[str, str, str]]:
    """(key, role, text) of every active program and proposal, without repeats."""
    with Session(engine) as session:
        records = active_program_records(session=session)
    fused = FusedIndex()
    texts: list[tuple[str, str, str]] = []
    for record in records:
        text = fused.program_text(record)  # type: ignore[arg-type]  # corpus records fit ProgramLike
        texts.append((passage_key(text, model_version=model_version), "passage", text))
    for proposal in all_proposal_texts(engine):
        texts.append((query_key(proposal, model_version=model_version), "query", proposal_text(proposal)))
    return list({key: (key, role, text) for key, role, text in texts}.values())


def _embed_batch(embedder: Embedder, batch: list[tuple[str, str, str]]) -> int:
    embedded = 0
    for role in ("passage", "query"):
        same = [text for _, r, text in batch if r == role]
        if same:
            before = embedder.n_embedded
            embedder.embed(same, role=role)
            embedded += embedder.n_embedded - before
    return embedded


def rebuild_embeddings(
    *, engine: Engine, embedder: Embedder, batch_size: int = 64, on_progress: Callable[[int], None] | None = None,
) -> EmbeddingReport:
    """Embed every active program and every proposal for the embedder's model
    version, skipping texts already stored, one committed batch at a time (an
    interrupted rebuild resumes where it stopped). ``on_progress(n)`` after
    each batch of ``n`` texts, cached ones included."""
    texts = _texts_to_embed(engine, embedder.model_version)
    with Session(engine) as session:
        stored = stored_keys(session, embedder.model_version, [k for k, _, _ in texts])
    if on_progress and stored:
        on_progress(len(stored))
    todo = [t for t in texts if t[0] not in stored]
    embedded = 0
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        embedded += _embed_batch(embedder, batch)
        store_embeddings(engine=engine, embedder=embedder, keys=[k for k, _, _ in batch])
        if on_progress:
            on_progress(len(batch))
    return EmbeddingReport(n_texts=len(texts), n_cached=len(stored), n_embedded=embedded)


def prune_embeddings(*, engine: Engine, model_version: str = MODEL_VERSION) -> int:
    """Delete cached vectors nobody reads: those of another model version, and
    those of texts no active program and no proposal has any more (edited or
    deleted texts, retired programs). Returns the number of rows deleted.
    Needs no model: fingerprints are hashes of the texts."""
    used = {key for key, _, _ in _texts_to_embed(engine, model_version)}
    with Session(engine) as session:
        stored = session.exec(
            select(col(EmbeddingCache.fingerprint)).where(col(EmbeddingCache.model_version) == model_version)
        ).all()
        unused = [key for key in stored if key not in used]
        deleted = rowcount_of(
            session.execute(delete(EmbeddingCache).where(col(EmbeddingCache.model_version) != model_version))
        )
        for start in range(0, len(unused), IN_BATCH):
            session.execute(
                delete(EmbeddingCache).where(
                    col(EmbeddingCache.model_version) == model_version,
                    col(EmbeddingCache.fingerprint).in_(unused[start : start + IN_BATCH]),
                )
            )
        session.commit()
    return deleted + len(unused)
