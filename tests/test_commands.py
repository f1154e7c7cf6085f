"""The coordinator's commands (office.commands) on SQLite and PostgreSQL: one
transaction, one event and at most one stage change per command, each
returning what it changed."""

from __future__ import annotations

import pytest
from factories import create_random_proposal, program_by_external_id
from sqlalchemy import event
from sqlmodel import func, select

from models.tables import AuditEvent, Decision, Proposal
from office import commands
from office.commands import Actor

COORDINATOR = Actor(name="支援室 山田")


@pytest.fixture
def commits(session):
    """How many times the session commits (a command must commit once)."""
    counter = {"n": 0}

    def count(_session):
        counter["n"] += 1

    event.listen(session, "after_commit", count)
    yield counter
    event.remove(session, "after_commit", count)


def events(session) -> list[AuditEvent]:
    """The events of the coordinator's commands (not the seeding or the submission)."""
    session.expire_all()
    actions = ("decision", "decision.undo", "proposal.stage")
    query = select(AuditEvent).where(AuditEvent.action.in_(actions)).order_by(AuditEvent.id)
    return list(session.exec(query))


def test_decide_commits_once_with_one_event_and_the_stage_change(session, commits):
    proposal = create_random_proposal(session)
    program = program_by_external_id(session, "H20-01")
    commits["n"] = 0
    change = commands.decide(session=session, proposal=proposal, program_id=program.id, verdict="accepted",
                             note="採用", actor=COORDINATOR)
    assert commits["n"] == 1
    # Accepting a pair is triage: 受付 → 確認中, never 採択.
    assert (change.stage_from, change.stage_to, change.stage_changed) == ("received", "checking", True)
    assert [d.verdict for d in change.decisions] == ["accepted"] and change.decisions[0].decided_by == "支援室 山田"
    [only] = events(session)
    assert only.id == change.event.id and only.action == "decision"
    assert only.detail == {"proposal_id": proposal.id, "program_id": program.id, "verdict": "accepted",
                           "stage": {"from": "received", "to": "checking"}}
    assert session.get(Proposal, proposal.id).stage == "checking"


def test_a_second_decision_moves_no_stage_and_says_so(session):
    proposal = create_random_proposal(session)
    first, second = program_by_external_id(session, "H20-01"), program_by_external_id(session, "H20-02")
    commands.decide(session=session, proposal=proposal, program_id=first.id, verdict="rejected")
    change = commands.decide(session=session, proposal=proposal, program_id=second.id, verdict="accepted")
    assert (change.stage_from, change.stage_to, change.stage_changed) == ("checking", "checking", False)
    assert "stage" not in events(session)[-1].detail


def test_unknown_program_or_verdict_writes_nothing(session):
    proposal = create_random_proposal(session)
    with pytest.raises(LookupError):
        commands.decide(session=session, proposal=proposal, program_id=999_999, verdict="accepted")
    with pytest.raises(ValueError, match="verdict"):
        commands.decide(session=session, proposal=proposal, program_id=program_by_external_id(session, "H20-01").id,
                        verdict="withdrawn")
    session.rollback()
    assert session.exec(select(func.count()).select_from(Decision)).one() == 0
    assert events(session) == []


def test_pair_by_hand_is_an_accept_with_its_note(session):
    proposal = create_random_proposal(session)
    program = program_by_external_id(session, "KN-532-1")
    change = commands.pair(session=session, proposal=proposal, program_id=program.id, actor=COORDINATOR)
    assert change.decisions[0].verdict == "accepted" and change.decisions[0].note == commands.PAIRED_BY_HAND
    assert events(session)[-1].detail["by_hand"] is True and change.stage_to == "checking"


def test_undo_is_one_event_and_leaves_the_stage(session, commits):
    proposal = create_random_proposal(session)
    program = program_by_external_id(session, "H20-01")
    commands.decide(session=session, proposal=proposal, program_id=program.id, verdict="accepted")
    commits["n"] = 0
    change = commands.undo(session=session, proposal=proposal, actor=COORDINATOR)
    assert commits["n"] == 1
    assert change.decisions[0].verdict == "withdrawn"
    assert (change.stage_from, change.stage_to) == ("checking", "checking")
    undo_events = [e for e in events(session) if e.action != "decision"]
    assert [e.action for e in undo_events] == ["decision.undo"]
    assert undo_events[0].detail["undone"] == "accepted" and undo_events[0].detail["restored"] == "withdrawn"
    assert commands.undo(session=session, proposal=create_random_proposal(session, "環境")) is None


def test_setting_the_stage_is_one_event(session, commits):
    proposal = create_random_proposal(session)
    commits["n"] = 0
    change = commands.set_stage(session=session, proposal=proposal, stage="not_adopted", actor=COORDINATOR)
    assert commits["n"] == 1 and change.stage_to == "not_adopted"
    [only] = events(session)
    assert only.action == "proposal.stage" and only.detail == {"from": "received", "to": "not_adopted"}
    # Asking for the stage it already has changes nothing and writes nothing.
    again = commands.set_stage(session=session, proposal=proposal, stage="not_adopted")
    assert not again.stage_changed and again.event is None and len(events(session)) == 1
    with pytest.raises(ValueError):
        commands.set_stage(session=session, proposal=proposal, stage="matched")
    assert session.get(Proposal, proposal.id).stage == "not_adopted"


def test_a_decision_after_not_adopted_leaves_the_stage(session):
    proposal = create_random_proposal(session)
    commands.set_stage(session=session, proposal=proposal, stage="not_adopted")
    change = commands.decide(session=session, proposal=proposal, program_id=program_by_external_id(session, "H20-01").id,
                             verdict="accepted")
    assert (change.stage_from, change.stage_to) == ("not_adopted", "not_adopted")


def test_the_events_are_an_outbox_in_order(session):
    from models.audit import events_since

    proposal = create_random_proposal(session)
    start = max((e.id for e in events_since(session=session)), default=0)
    program = program_by_external_id(session, "H20-01")
    decided = commands.decide(session=session, proposal=proposal, program_id=program.id, verdict="accepted")
    undone = commands.undo(session=session, proposal=proposal)
    staged = commands.set_stage(session=session, proposal=proposal, stage="consulting")
    seen = events_since(session=session, after_id=start)
    assert [e.id for e in seen] == [decided.event.id, undone.event.id, staged.event.id]
    assert [e.action for e in events_since(session=session, after_id=start, actions=["decision.undo"])] == [
        "decision.undo"]
    assert events_since(session=session, after_id=staged.event.id) == []


def test_undo_is_a_stack_that_never_reapplies(session):
    proposal = create_random_proposal(session)
    first, second = program_by_external_id(session, "H20-01"), program_by_external_id(session, "H20-02")
    commands.decide(session=session, proposal=proposal, program_id=first.id, verdict="rejected")
    commands.decide(session=session, proposal=proposal, program_id=first.id, verdict="accepted")
    commands.decide(session=session, proposal=proposal, program_id=second.id, verdict="deferred")
    from models.decisions import current_decisions

    def state():
        return {pid: d.verdict for (_, pid), d in current_decisions(session=session, proposal_ids=[proposal.id]).items()}

    commands.undo(session=session, proposal=proposal)
    assert state() == {first.id: "accepted", second.id: "withdrawn"}
    commands.undo(session=session, proposal=proposal)
    assert state() == {first.id: "rejected", second.id: "withdrawn"}
    commands.undo(session=session, proposal=proposal)
    assert state() == {first.id: "withdrawn", second.id: "withdrawn"}
    assert commands.undo(session=session, proposal=proposal) is None  # nothing left; nothing re-applied
    history = session.exec(select(Decision).where(Decision.proposal_id == proposal.id).order_by(Decision.id)).all()
    assert len(history) == 6 and [d.undoes_id for d in history[3:]] == [history[2].id, history[1].id, history[0].id]


def test_a_decision_made_on_an_old_version_is_refused(session):
    proposal = create_random_proposal(session)
    program = program_by_external_id(session, "H20-01")
    seen = proposal.version
    commands.decide(session=session, proposal=proposal, program_id=program.id, verdict="accepted",
                    expected_version=seen)
    with pytest.raises(commands.StaleDecision):
        commands.undo(session=session, proposal=proposal, expected_version=seen)
    with pytest.raises(commands.StaleDecision):
        commands.decide(session=session, proposal=proposal, program_id=program.id, verdict="rejected",
                        expected_version=seen)
    assert [d.verdict for d in session.exec(select(Decision))] == ["accepted"]
    assert session.get(Proposal, proposal.id).version == seen + 1


@pytest.mark.parametrize("rounds", [20])
def test_two_coordinators_racing_on_one_pair_never_void_each_other(engine, session, rounds):
    """An accept and an undo made on the same page version, at the same moment:
    exactly one wins, the other is told; the history and the stage agree."""
    import threading

    from sqlmodel import Session

    program = program_by_external_id(session, "H20-01")
    for _ in range(rounds):
        proposal = create_random_proposal(session)
        commands.decide(session=session, proposal=proposal, program_id=program.id, verdict="rejected")
        version = session.get(Proposal, proposal.id).version
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def act(kind: str, proposal_id: int = proposal.id, version: int = version,
                barrier: threading.Barrier = barrier, outcomes: list[str] = outcomes) -> None:
            with Session(engine, expire_on_commit=False) as own:
                mine = own.get(Proposal, proposal_id)
                barrier.wait()
                try:
                    if kind == "accept":
                        commands.decide(session=own, proposal=mine, program_id=program.id, verdict="accepted",
                                        expected_version=version)
                    else:
                        commands.undo(session=own, proposal=mine, expected_version=version)
                    outcomes.append(kind)
                except commands.StaleDecision:
                    outcomes.append("stale")

        threads = [threading.Thread(target=act, args=(k,)) for k in ("accept", "undo")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes).count("stale") == 1, outcomes
        session.expire_all()
        rows = session.exec(select(Decision).where(Decision.proposal_id == proposal.id)).all()
        assert len(rows) == 2 and session.get(Proposal, proposal.id).version == version + 1
