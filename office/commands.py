"""The coordinator's triage, one command each: decide, pair, undo, set_stage.

Every command is one transaction: it appends what it changes, writes exactly
one event (the audit trail, which later work reads as an outbox), moves the
proposal's stage at most once, commits once and returns a :class:`Change`
saying what changed. Views, the API and the command line call only these;
the query functions they use add and flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from models.audit import record_event
from models.clock import utcnow
from models.decisions import append_decision, current_decisions, decision_history, is_standing
from models.labels import CHOSEN_VERDICTS, Stage, Verdict
from models.tables import AuditEvent, Decision, DecisionCreate, Program, Proposal

PAIRED_BY_HAND = "手動で組み合わせ"  # the note of a pair made by hand without one


@dataclass(frozen=True)
class Actor:
    """Who runs a command: a coordinator (user id and name) or an API token."""

    name: str = ""
    user_id: int | None = None


NOBODY = Actor()  # the default actor: a command run by no one in particular (tests, scripts)


@dataclass
class Change:
    """What one command changed."""

    proposal: Proposal
    decisions: list[Decision] = field(default_factory=list)
    stage_from: str = ""
    stage_to: str = ""
    event: AuditEvent | None = None

    @property
    def stage_changed(self) -> bool:
        return self.stage_from != self.stage_to


def triaged_stage(stage: str) -> str:
    """The stage a pair decision leaves (the one rule): 受付 becomes 確認中, the
    support office having read the proposal; any other stage stays.

    Pair decisions are the office's internal triage: they never move a proposal
    to 採択 or 不採択, and the NPO sees only published answers.

    >>> triaged_stage("received"), triaged_stage("consulting")
    ('checking', 'consulting')
    """
    return Stage.CHECKING.value if stage == Stage.RECEIVED.value else stage


class StaleDecision(Exception):
    """The page was made on an older version of the proposal's decisions: another
    coordinator decided meanwhile. Nothing was written."""

    message = "ほかの担当者が先に更新しました。最新の状態を確認してから、もう一度判断してください。"


def _bump_version(session: Session, proposal: Proposal, expected: int | None) -> None:
    """Compare-and-set the proposal's decision version (``expected`` None: no
    check, as for the API and scripts); StaleDecision when another decision
    came first. The row is then locked for this transaction on PostgreSQL and
    SQLite takes its write lock, so two decisions on one proposal serialise."""
    condition = [col(Proposal.id) == proposal.id]
    if expected is not None:
        condition.append(col(Proposal.version) == expected)
    result = session.execute(update(Proposal).where(*condition).values(version=col(Proposal.version) + 1))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise StaleDecision(proposal.id)
    session.refresh(proposal)


def move_stage(session: Session, proposal: Proposal, wanted: str) -> tuple[str, str]:
    """Set the stage (no event of its own: the command's event carries it)."""
    before = proposal.stage
    if wanted != before:
        proposal.stage = wanted
        proposal.updated_at = utcnow()
        session.add(proposal)
    return before, wanted


def finish(session: Session, change: Change, *, action: str, entity: str, entity_id: Any,
            actor: Actor, detail: dict[str, Any]) -> Change:
    """Write the command's one event and commit once (what it returns needs no
    reload: every value was set here or at flush)."""
    if change.stage_changed and "to" not in detail:
        detail = {**detail, "stage": {"from": change.stage_from, "to": change.stage_to}}
    change.event = record_event(
        session=session, action=action, entity=entity, entity_id=entity_id,
        actor=actor.name, user_id=actor.user_id, detail=detail,
    )
    session.commit()
    return change


def decide(
    *, session: Session, proposal: Proposal, program_id: int, verdict: str, note: str = "",
    actor: Actor = NOBODY, expected_version: int | None = None,
) -> Change:
    """採用 / 見送り / 保留 of one pair; the stage follows (:func:`triaged_stage`).

    LookupError when the program does not exist, ValueError for another verdict.
    """
    if verdict not in {v.value for v in CHOSEN_VERDICTS}:
        raise ValueError(f"verdict {verdict!r} is not one of {', '.join(v.value for v in CHOSEN_VERDICTS)}")
    return _record(session, proposal, program_id, verdict, note, actor, by_hand=False, expected=expected_version)


def pair(*, session: Session, proposal: Proposal, program_id: int, note: str = "", actor: Actor = NOBODY,
         expected_version: int | None = None) -> Change:
    """Pair by hand with any program of the catalogue: recorded as 採用."""
    return _record(session, proposal, program_id, Verdict.ACCEPTED.value, note or PAIRED_BY_HAND, actor,
                   by_hand=True, expected=expected_version)


def _record(session: Session, proposal: Proposal, program_id: int, verdict: str, note: str,
            actor: Actor, *, by_hand: bool, expected: int | None) -> Change:
    if session.get(Program, program_id) is None:
        raise LookupError(f"program {program_id} does not exist")
    assert proposal.id is not None
    _bump_version(session, proposal, expected)
    decision = append_decision(
        session=session,
        decision_in=DecisionCreate(
            proposal_id=proposal.id, program_id=program_id, verdict=verdict, note=note,
            user_id=actor.user_id, decided_by=actor.name,
        ),
    )
    before, after = move_stage(session, proposal, triaged_stage(proposal.stage))
    change = Change(proposal=proposal, decisions=[decision], stage_from=before, stage_to=after)
    detail = {"proposal_id": proposal.id, "program_id": program_id, "verdict": verdict}
    if by_hand:
        detail["by_hand"] = True
    return finish(session, change, action="decision", entity="decision", entity_id=decision.id or "",
                   actor=actor, detail=detail)


def reject_rest(*, session: Session, proposal: Proposal, program_ids: list[int], actor: Actor = NOBODY,
                expected_version: int | None = None) -> Change:
    """見送り for every pair of ``program_ids`` (the proposal's suggestions) that has
    no standing decision: one command, one event, one commit; the page's
    「残りを見送り」."""
    assert proposal.id is not None
    current = current_decisions(session=session, proposal_ids=[proposal.id])
    undecided = [pid for pid in program_ids if not is_standing(current.get((proposal.id, pid)))]
    _bump_version(session, proposal, expected_version)
    decisions = [
        append_decision(session=session, decision_in=DecisionCreate(
            proposal_id=proposal.id, program_id=pid, verdict=Verdict.REJECTED.value, note="残りを見送り",
            user_id=actor.user_id, decided_by=actor.name))
        for pid in undecided
    ]
    before, after = move_stage(session, proposal, triaged_stage(proposal.stage))
    change = Change(proposal=proposal, decisions=decisions, stage_from=before, stage_to=after)
    return finish(session, change, action="decision.rest", entity="proposal", entity_id=proposal.id, actor=actor,
                  detail={"proposal_id": proposal.id, "program_ids": undecided, "verdict": Verdict.REJECTED.value})


def undo_target(history: list[Decision]) -> tuple[Decision, str] | None:
    """The decision an undo steps back (the newest one not undone yet, undo rows
    aside) and the verdict its pair had before it (``withdrawn`` if none): undo
    is a stack, each one goes one decision further back and none re-applies one.

    >>> rows = [Decision(id=1, proposal_id=1, program_id=7, verdict="rejected"),
    ...         Decision(id=2, proposal_id=1, program_id=7, verdict="accepted")]
    >>> [(d.id, v) for d, v in [undo_target(rows)]]
    [(2, 'rejected')]
    >>> rows.append(Decision(id=3, proposal_id=1, program_id=7, verdict="rejected", undoes_id=2))
    >>> [(d.id, v) for d, v in [undo_target(rows)]]
    [(1, 'withdrawn')]
    """
    undone = {d.undoes_id for d in history if d.undoes_id is not None}
    candidates = [d for d in history if d.undoes_id is None and d.id not in undone]
    if not candidates:
        return None
    last = candidates[-1]
    before = [d for d in history if d.program_id == last.program_id and (d.id or 0) < (last.id or 0)]
    # The pair's state just before ``last``: its newest row then (an undo row included).
    return last, before[-1].verdict if before else Verdict.WITHDRAWN.value


def undo(*, session: Session, proposal: Proposal, actor: Actor = NOBODY,
         expected_version: int | None = None) -> Change | None:
    """Undo the proposal's newest decision not undone yet, by appending the
    verdict its pair had before (:func:`undo_target`); nothing is deleted.

    A pair with no earlier verdict gets ``withdrawn``: undecided again, for the
    rematch and the pages. None when there is nothing left to undo.
    """
    assert proposal.id is not None
    target = undo_target(decision_history(session=session, proposal_id=proposal.id))
    if target is None:
        return None
    last, restored = target
    _bump_version(session, proposal, expected_version)
    decision = append_decision(
        session=session,
        decision_in=DecisionCreate(
            proposal_id=proposal.id, program_id=last.program_id, verdict=restored, undoes_id=last.id,
            note=f"取り消し（決定 #{last.id} を取り消し）", user_id=actor.user_id, decided_by=actor.name,
        ),
    )
    before, after = move_stage(session, proposal, triaged_stage(proposal.stage))
    change = Change(proposal=proposal, decisions=[decision], stage_from=before, stage_to=after)
    detail = {"proposal_id": proposal.id, "program_id": last.program_id, "undone": last.verdict,
              "restored": restored, "decision_id": decision.id, "undoes_id": last.id}
    return finish(session, change, action="decision.undo", entity="decision", entity_id=last.id or "",
                  actor=actor, detail=detail)


def set_stage(*, session: Session, proposal: Proposal, stage: str, actor: Actor = NOBODY) -> Change:
    """The coordinator's stage of the proposal (internal: the NPO sees the stage
    of the last published answer). ValueError for an unknown stage; no event
    when nothing changes."""
    assert proposal.id is not None
    before, after = move_stage(session, proposal, Stage(stage).value)
    change = Change(proposal=proposal, stage_from=before, stage_to=after)
    if not change.stage_changed:
        return change
    return finish(session, change, action="proposal.stage", entity="proposal", entity_id=proposal.id,
                  actor=actor, detail={"from": before, "to": after})
