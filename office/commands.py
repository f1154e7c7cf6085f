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

from sqlmodel import Session

from models.audit import record_event
from models.clock import utcnow
from models.decisions import append_decision, decision_history
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
    actor: Actor = NOBODY,
) -> Change:
    """採用 / 見送り / 保留 of one pair; the stage follows (:func:`triaged_stage`).

    LookupError when the program does not exist, ValueError for another verdict.
    """
    if verdict not in {v.value for v in CHOSEN_VERDICTS}:
        raise ValueError(f"verdict {verdict!r} is not one of {', '.join(v.value for v in CHOSEN_VERDICTS)}")
    return _record(session, proposal, program_id, verdict, note, actor, by_hand=False)


def pair(*, session: Session, proposal: Proposal, program_id: int, note: str = "", actor: Actor = NOBODY) -> Change:
    """Pair by hand with any program of the catalogue: recorded as 採用."""
    return _record(session, proposal, program_id, Verdict.ACCEPTED.value, note or PAIRED_BY_HAND, actor, by_hand=True)


def _record(session: Session, proposal: Proposal, program_id: int, verdict: str, note: str,
            actor: Actor, *, by_hand: bool) -> Change:
    if session.get(Program, program_id) is None:
        raise LookupError(f"program {program_id} does not exist")
    assert proposal.id is not None
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


def undo(*, session: Session, proposal: Proposal, actor: Actor = NOBODY) -> Change | None:
    """Undo the proposal's newest decision by appending the pair's previous verdict.

    Nothing is deleted (the history is append-only). A pair with no earlier
    verdict gets ``withdrawn``: undecided again, for the rematch and the pages.
    None when the proposal has no decision.
    """
    assert proposal.id is not None
    history = decision_history(session=session, proposal_id=proposal.id)
    if not history:
        return None
    last = history[-1]
    earlier = [d for d in history[:-1] if d.program_id == last.program_id]
    restored = earlier[-1].verdict if earlier else Verdict.WITHDRAWN.value
    decision = append_decision(
        session=session,
        decision_in=DecisionCreate(
            proposal_id=proposal.id, program_id=last.program_id, verdict=restored,
            note=f"取り消し（決定 #{last.id} を取り消し）", user_id=actor.user_id, decided_by=actor.name,
        ),
    )
    before, after = move_stage(session, proposal, triaged_stage(proposal.stage))
    change = Change(proposal=proposal, decisions=[decision], stage_from=before, stage_to=after)
    detail = {"proposal_id": proposal.id, "program_id": last.program_id, "undone": last.verdict,
              "restored": restored, "decision_id": decision.id}
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
