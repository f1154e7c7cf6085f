"""A semantic rematch stores its embeddings chunk by chunk (office.rematch,
office.embeddings.EmbeddingWriter): a run that fails after its first chunk
keeps the vectors it computed, and the next run embeds only the rest. With
the real model, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from factories import create_random_proposal
from sqlmodel import col, select

from matcher.semantic import MODEL_VERSION, shared_embedder
from models.tables import EmbeddingCache, MatchRun, Suggestion
from office.embeddings import _texts_to_embed
from web import create_app
from web.db import dispose, get_engine, get_matching

TOPICS = ("防災", "子育て", "環境", "情報")


@pytest.fixture
def semantic_app(app):
    other = create_app({**app.config, "MATCH_MODE": "semantic"})
    yield other
    dispose(other)


def _stored(session) -> set[str]:
    session.expire_all()
    return set(session.exec(select(col(EmbeddingCache.fingerprint))))


def test_a_run_failing_after_its_first_chunk_keeps_the_vectors_it_computed(semantic_app, session):
    for topic in TOPICS:
        create_random_proposal(session, topic)
    engine = get_engine(semantic_app)
    texts = _texts_to_embed(engine, MODEL_VERSION)
    passages = {key for key, role, _ in texts if role == "passage"}
    queries = {key for key, role, _ in texts if role == "query"}
    assert len(passages) == 30 and len(queries) == len(TOPICS)
    embedder = shared_embedder()
    embedder.cache.clear()  # as a new process: nothing embedded yet, nothing stored

    def crash(_run_id: int, _written: int) -> None:  # the run's own hook, after its first committed chunk
        raise RuntimeError("the worker was stopped after the first chunk")

    with pytest.raises(RuntimeError, match="after the first chunk"):
        get_matching(semantic_app).rematch(engine=engine, top_k=3, chunk_size=1, after_chunk=crash)
    run = session.exec(select(MatchRun)).one()
    assert run.status == "failed" and "after the first chunk" in run.error
    assert session.exec(select(Suggestion).where(col(Suggestion.match_run_id) == run.id)).all() == []
    kept = _stored(session)
    # Every program's vector (made by the fit) and the first chunk's one proposal.
    assert passages <= kept and len(kept & queries) == 1 and kept <= passages | queries

    embedder.cache.clear()  # the next run, in a new process
    before = embedder.n_embedded
    report = get_matching(semantic_app).rematch(engine=engine, top_k=3, chunk_size=1)
    assert report.n_embedded == len(TOPICS) - 1 == embedder.n_embedded - before
    assert _stored(session) == passages | queries
