"""``kyodo rematch`` and online matching: decisions never lost, rejected pairs
never back, accepted pairs kept, atomic publication, a killed run, a refused
concurrent run; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from factories import PROPOSAL_TEXTS, create_random_proposal, decide, program_by_external_id
from sqlmodel import Session, select

from models.suggestions import outcomes_for, suggestions_for, suggestions_for_proposal
from models.tables import Decision, MatchOutcome, MatchRun, Program, Suggestion
from office.service import MatchingService
from web import create_app
from web.cli import cli
from web.cli_data import EXIT_LOCKED
from web.db import dispose, get_engine, get_matching

REPO = Path(__file__).resolve().parents[1]


def rematch(runner, *args: str):
    result = runner.invoke(cli, ["rematch", *args])
    assert result.exit_code == 0, result.output
    return result


def all_topics(session):
    return [create_random_proposal(session, topic) for topic in PROPOSAL_TEXTS]


def published(session, proposals=None):
    """(proposal, program, rank, score) of every published suggestion."""
    session.expire_all()
    ids = [p.id for p in proposals] if proposals else [p for (p,) in session.exec(select(Suggestion.proposal_id).distinct())]
    return sorted(
        (s.proposal_id, s.program_id, s.rank, round(s.score, 6))
        for rows in suggestions_for(session=session, proposal_ids=ids).values()
        for s in rows
    )


def decision_rows(session):
    session.expire_all()
    return [d.model_dump() for d in session.exec(select(Decision).order_by(Decision.id))]


def test_rematch_writes_top_k_and_marks_new_pairs(runner, session):
    proposals = all_topics(session)
    result = rematch(runner, "--top-k", "3")
    assert "6 proposals × 30 programs" in result.output
    rows = suggestions_for(session=session, proposal_ids=[p.id for p in proposals])
    assert all(1 <= len(r) <= 3 for r in rows.values())
    assert all(s.is_new for r in rows.values() for s in r)
    assert [s.rank for s in rows[proposals[0].id]] == list(range(1, len(rows[proposals[0].id]) + 1))
    first = published(session, proposals)
    rematch(runner, "--top-k", "3")
    session.expire_all()
    again = suggestions_for(session=session, proposal_ids=[p.id for p in proposals])
    assert not any(s.is_new for r in again.values() for s in r)
    assert published(session, proposals) == first
    runs = session.exec(select(MatchRun).order_by(MatchRun.id)).all()
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert runs[1].n_suggestions == len(first) and runs[1].n_proposals == 6
    # Only the published run's rows are kept.
    assert {s.match_run_id for s in session.exec(select(Suggestion))} == {runs[1].id}


def test_decisions_identical_and_rejected_pair_not_resurrected(runner, session):
    proposals = all_topics(session)
    rematch(runner, "--top-k", "3")
    target = proposals[0]
    before = [s.program_id for s in suggestions_for_proposal(session=session, proposal_id=target.id)]
    rejected = before[0]
    decide(session, target.id, rejected, "rejected", "担当課が違う")
    decide(session, proposals[1].id, suggestions_for_proposal(session=session, proposal_id=proposals[1].id)[0].program_id, "deferred")
    decisions = decision_rows(session)
    rematch(runner, "--top-k", "3")
    assert decision_rows(session) == decisions
    after = suggestions_for_proposal(session=session, proposal_id=target.id)
    assert rejected not in [s.program_id for s in after]
    assert len(after) == len(before)  # filled from the next ranks
    assert [s.program_id for s in after[:2]] == before[1:3]
    # A change of mind (rejected → accepted) brings it back.
    decide(session, target.id, rejected, "accepted")
    rematch(runner, "--top-k", "3")
    assert rejected in [s.program_id for s in suggestions_for_proposal(session=session, proposal_id=target.id)]


def test_accepted_pair_stays_visible_outside_top_k(runner, session):
    proposal = create_random_proposal(session, "まちづくり")
    rematch(runner, "--top-k", "3")
    third = suggestions_for_proposal(session=session, proposal_id=proposal.id)[2]
    third_program, third_score = third.program_id, third.score
    decide(session, proposal.id, third_program, "accepted")
    rematch(runner, "--top-k", "1")
    rows = suggestions_for_proposal(session=session, proposal_id=proposal.id)
    assert [s.kept_by_decision for s in rows] == [False, True]
    kept = rows[1]
    assert kept.program_id == third_program
    assert kept.rank == 3 and abs(kept.score - third_score) < 1e-9 and kept.terms
    # An accepted program that then leaves the catalogue (an earlier fiscal
    # year): still listed, after every ranked program, with score 0.
    retired = program_by_external_id(session, "H20-04")
    assert retired.id not in [s.program_id for s in rows]
    decide(session, proposal.id, retired.id, "accepted")
    session.get(Program, retired.id).active = False
    session.commit()
    rematch(runner, "--top-k", "1")
    rows = suggestions_for_proposal(session=session, proposal_id=proposal.id)
    assert [(s.program_id, s.kept_by_decision) for s in rows] == [
        (rows[0].program_id, False), (third_program, True), (retired.id, True)]
    gone = rows[2]
    assert gone.score == 0.0 and gone.terms == []
    assert gone.rank == session.exec(select(MatchRun).order_by(MatchRun.id.desc())).first().n_programs + 1


def test_edited_program_is_reflected_after_rematch(runner, session, tmp_path):
    proposal = create_random_proposal(session, title="ドローン教室", body="ドローン操縦の体験教室を子ども向けに開きたい。")
    rematch(runner)
    program = program_by_external_id(session, "H20-04")
    assert program.id not in [s.program_id for s in suggestions_for_proposal(session=session, proposal_id=proposal.id)]
    export = tmp_path / "programs.jsonl"
    assert runner.invoke(cli, ["programs", "export", "--format", "jsonl", "-o", str(export)]).exit_code == 0
    lines = export.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("表や写真などを使って", "表や写真、ドローン操縦の体験教室などを使って")
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imported = runner.invoke(cli, ["programs", "import", str(export)])
    assert "updated 1" in imported.output, imported.output
    rematch(runner)
    top = suggestions_for_proposal(session=session, proposal_id=proposal.id)[0]
    assert top.program_id == program.id
    assert any("ドローン" in term[0] for term in top.terms)
    assert top.is_new


def test_online_matching_uses_the_published_index(app, runner, session):
    proposal = create_random_proposal(session, "防災")
    index_path = app.config["INDEX_PATH"]
    matching = MatchingService(mode="lexical", index_path=index_path, top_k=3)
    assert matching.suggest_online(session=session, proposal_ids=[proposal.id]) > 0
    online = suggestions_for_proposal(session=session, proposal_id=proposal.id)
    assert online and all(s.match_run_id is None for s in online)
    online = [s.program_id for s in online]
    assert any(p.name.startswith("catalogue-") for p in Path(index_path).iterdir())
    rematch(runner, "--top-k", "3")
    batch = suggestions_for_proposal(session=session, proposal_id=proposal.id)
    assert batch and all(s.match_run_id is not None for s in batch)
    assert [s.program_id for s in batch] == online
    assert not any(s.is_new for s in batch)  # same pairs as the online ones
    assert sorted(p.name for p in Path(index_path).iterdir()) == [f"run-{batch[0].match_run_id}"]


def test_proposal_matched_while_a_rematch_runs_keeps_its_suggestions(app, runner, session):
    create_random_proposal(session, "環境")
    rematch(runner)
    late: dict[str, int] = {}

    def create_late_proposal(_run_id, _written):
        if late:
            return
        with Session(get_engine(app)) as other:
            proposal = create_random_proposal(other, "子育て")
            late["id"] = proposal.id
            get_matching(app).suggest_online(session=other, proposal_ids=[proposal.id])

    get_matching(app).rematch(engine=get_engine(app), after_chunk=create_late_proposal)
    rows = suggestions_for_proposal(session=session, proposal_id=late["id"])
    assert rows and all(s.match_run_id is None for s in rows)


@contextmanager
def paused_rematch(app, tmp_path):
    """A ``kyodo rematch`` subprocess stopped after writing its first chunk (3 of 6 proposals)."""
    flag = tmp_path / "paused"
    env = dict(os.environ, KYODO_DATABASE_URL=app.config["DATABASE_URL"], KYODO_INSTANCE_PATH=app.instance_path)
    process = subprocess.Popen(
        [sys.executable, "-c", "from web.cli import cli; cli()", "rematch", "--top-k", "3",
         "--chunk-size", "3", "--pause-after-first-chunk", str(flag)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"rematch exited {process.returncode} before pausing: {err.decode()}")
            assert time.monotonic() < deadline, "rematch did not reach its first chunk in 60 s"
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_concurrent_rematch_is_refused(app, runner, session, tmp_path):
    all_topics(session)
    with paused_rematch(app, tmp_path):
        refused = runner.invoke(cli, ["rematch"])
        assert refused.exit_code == EXIT_LOCKED
        assert "already running" in refused.output
        assert len(refused.output.strip().splitlines()) == 1
    session.expire_all()
    assert len(session.exec(select(MatchRun)).all()) == 1  # the refused one started no run


def test_killed_rematch_leaves_previous_suggestions(app, runner, session, tmp_path):
    proposals = all_topics(session)
    rematch(runner, "--top-k", "3")
    rejected = suggestions_for_proposal(session=session, proposal_id=proposals[0].id)[0].program_id
    decide(session, proposals[0].id, rejected, "rejected")
    previous = published(session, proposals)
    with paused_rematch(app, tmp_path) as process:
        session.expire_all()
        running = session.exec(select(MatchRun).where(MatchRun.status == "running")).one()
        partial = session.exec(select(Suggestion).where(Suggestion.match_run_id == running.id)).all()
        assert 0 < len({s.proposal_id for s in partial}) <= 3  # half of its rows written...
        assert published(session, proposals) == previous  # ...and not visible
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert published(session, proposals) == previous
    session.expire_all()
    assert session.get(MatchRun, running.id).status == "running"
    # The next start of the app finds the run stale and marks it failed.
    restarted = create_app(dict(app.config))
    try:
        get_engine(restarted)
    finally:
        dispose(restarted)
    session.expire_all()
    stale = session.get(MatchRun, running.id)
    assert stale.status == "failed" and "stale" in stale.error
    assert session.exec(select(Suggestion).where(Suggestion.match_run_id == running.id)).all() == []
    assert published(session, proposals) == previous
    # And the next rematch runs normally.
    rematch(runner, "--top-k", "3")
    after = published(session, proposals)
    assert after != previous and (proposals[0].id, rejected) not in {(p, q) for p, q, _, _ in after}


def test_killed_rematch_found_stale_by_the_next_rematch(app, runner, session, tmp_path):
    all_topics(session)
    with paused_rematch(app, tmp_path) as process:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    result = rematch(runner)
    session.expire_all()
    runs = session.exec(select(MatchRun).order_by(MatchRun.id)).all()
    assert [r.status for r in runs] == ["failed", "succeeded"]
    assert "stale" in runs[0].error
    assert f"run {runs[1].id}" in result.output


def test_the_match_outcome_is_stored_and_published_with_the_run(app, runner, session):
    proposals = all_topics(session)
    # Written for testing: a proposal no program of the bundled catalogue fits.
    off_topic = create_random_proposal(
        session, title="公園にドッグランを",
        body="愛犬家の会です。河川敷の公園の一角に、犬が綱を外して走れるドッグランを設け、飼い主のマナー教室も開きたい。",
    )
    get_matching(app).suggest_online(session=session, proposal_ids=[off_topic.id])
    online = outcomes_for(session=session, proposal_ids=[off_topic.id])[off_topic.id]
    assert online.match_run_id is None and online.no_match
    rematch(runner, "--top-k", "3")
    rematch(runner, "--top-k", "3")
    session.expire_all()
    run = session.exec(select(MatchRun).order_by(MatchRun.id.desc())).first()
    outcomes = outcomes_for(session=session, proposal_ids=[p.id for p in [*proposals, off_topic]])
    assert {o.match_run_id for o in outcomes.values()} == {run.id}
    assert outcomes[off_topic.id].no_match and not outcomes[proposals[0].id].no_match
    # The best TF-IDF score over all programs: the top suggestion's, when nothing is rejected.
    top = suggestions_for_proposal(session=session, proposal_id=proposals[0].id)[0]
    assert abs(outcomes[proposals[0].id].best_lexical - top.score) < 1e-9
    # Only the published run's outcomes are kept, one per proposal.
    assert len(session.exec(select(MatchOutcome)).all()) == len(proposals) + 1


def test_a_pair_decided_while_the_rematch_runs_is_respected(app, runner, session):
    """A pair rejected after the run read the decisions (its rows already written)
    is not published and the top-k is refilled; one accepted meanwhile is kept."""
    proposals = all_topics(session)
    rematch(runner, "--top-k", "3")
    first, second = proposals[0], proposals[1]
    before = [s.program_id for s in suggestions_for_proposal(session=session, proposal_id=first.id)]
    programs = [p.id for p in session.exec(select(Program).where(Program.active).order_by(Program.id))]
    top = {s.program_id for s in suggestions_for_proposal(session=session, proposal_id=second.id)}
    outside = next(p for p in programs if p not in top)
    decided: list[str] = []

    def decide_meanwhile(_run_id, _written):
        if decided:
            return
        # Both proposals are in the first chunk: their rows are written by now.
        with Session(get_engine(app)) as other:
            decide(other, first.id, before[0], "rejected")
            decide(other, second.id, outside, "accepted")
        decided.append("yes")

    report = get_matching(app).rematch(engine=get_engine(app), top_k=3, chunk_size=3, after_chunk=decide_meanwhile)
    session.expire_all()
    after = [s.program_id for s in suggestions_for_proposal(session=session, proposal_id=first.id)]
    assert before[0] not in after and len(after) == 3 and after[:2] == before[1:3]
    kept = suggestions_for_proposal(session=session, proposal_id=second.id)
    assert outside in [s.program_id for s in kept] and kept[-1].kept_by_decision
    # The run's report and row counts say what was published.
    assert report.n_suggestions == len(session.exec(select(Suggestion).where(Suggestion.match_run_id == report.run_id)).all())
