"""The coordinator's state changes, one command each: decide, pair, undo,
set_status.

Every command is one transaction: it appends what it changes, writes exactly
one event (the audit trail, which later work reads as an outbox), moves the
proposal's status at most once, commits once and returns a :class:`Change`
saying what changed. Views, the API and the command line call only these;
the query functions they use add and flush, never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from models.audit import record_event
from models.clock import utcnow
from models.decisions import append_decision, current_decisions, decision_history
from models.labels import CHOSEN_VERDICTS, ProposalStatus, Verdict
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
    status_from: str = ""
    status_to: str = ""
    event: AuditEvent | None = None

    @property
    def status_changed(self) -> bool:
        return self.status_from != self.status_to


def derived_status(status: str, verdicts: Iterable[str]) -> str:
    """The status a proposal's current verdicts give it (the one rule).

    マッチ成立 while some pair is accepted; otherwise 見送り stays 見送り; 検討中
    once any pair has a decision (an undone one included); else 受付.

    >>> derived_status("received", ["accepted"]), derived_status("declined", ["rejected"])
    ('matched', 'declined')
    >>> derived_status("matched", ["withdrawn"]), derived_status("reviewing", [])
    ('reviewing', 'received')
    """
    verdicts = list(verdicts)
    if Verdict.ACCEPTED.value in verdicts:
        return ProposalStatus.MATCHED.value
    if status == ProposalStatus.DECLINED.value:
        return status
    return ProposalStatus.REVIEWING.value if verdicts else ProposalStatus.RECEIVED.value


def _current_verdicts(session: Session, proposal_id: int) -> list[str]:
    return [d.verdict for d in current_decisions(session=session, proposal_ids=[proposal_id]).values()]


def _move_status(session: Session, proposal: Proposal, wanted: str) -> tuple[str, str]:
    """Set the status (no event of its own: the command's event carries it)."""
    before = proposal.status
    if wanted != before:
        proposal.status = wanted
        proposal.updated_at = utcnow()
        session.add(proposal)
    return before, wanted


def _finish(session: Session, change: Change, *, action: str, entity: str, entity_id: Any,
            actor: Actor, detail: dict[str, Any]) -> Change:
    """Write the command's one event and commit once (what it returns needs no
    reload: every value was set here or at flush)."""
    if change.status_changed and "to" not in detail:
        detail = {**detail, "status": {"from": change.status_from, "to": change.status_to}}
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
    """採用 / 見送り / 保留 of one pair; the status follows (:func:`derived_status`).

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
    wanted = derived_status(proposal.status, _current_verdicts(session, proposal.id))
    before, after = _move_status(session, proposal, wanted)
    change = Change(proposal=proposal, decisions=[decision], status_from=before, status_to=after)
    detail = {"proposal_id": proposal.id, "program_id": program_id, "verdict": verdict}
    if by_hand:
        detail["by_hand"] = True
    return _finish(session, change, action="decision", entity="decision", entity_id=decision.id or "",
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
    wanted = derived_status(proposal.status, _current_verdicts(session, proposal.id))
    before, after = _move_status(session, proposal, wanted)
    change = Change(proposal=proposal, decisions=[decision], status_from=before, status_to=after)
    detail = {"proposal_id": proposal.id, "program_id": last.program_id, "undone": last.verdict,
              "restored": restored, "decision_id": decision.id}
    return _finish(session, change, action="decision.undo", entity="decision", entity_id=last.id or "",
                   actor=actor, detail=detail)


class StatusConflict(ValueError):
    """A status the proposal's decisions contradict; ``str()`` is the Japanese message."""


def status_for_request(requested: str, verdicts: Iterable[str]) -> str:
    """The status a coordinator's choice gives, or StatusConflict.

    見送り is always allowed (the whole proposal); マッチ成立 only while a pair
    is accepted, and nothing else then: the status never contradicts the
    decisions.
    """
    requested = ProposalStatus(requested).value
    accepted = Verdict.ACCEPTED.value in list(verdicts)
    if requested == ProposalStatus.DECLINED.value:
        return requested
    if requested == ProposalStatus.MATCHED.value and not accepted:
        raise StatusConflict("採用した事業がないため「マッチ成立」にはできません。事業を採用してください。")
    if accepted and requested != ProposalStatus.MATCHED.value:
        raise StatusConflict("採用した事業があるため、この状況にはできません。先に採用を取り消してください。")
    return requested


def set_status(*, session: Session, proposal: Proposal, status: str, actor: Actor = NOBODY) -> Change:
    """The status the submitter sees, chosen by the coordinator (see
    :func:`status_for_request`). No event when nothing changes."""
    assert proposal.id is not None
    wanted = status_for_request(status, _current_verdicts(session, proposal.id))
    before, after = _move_status(session, proposal, wanted)
    change = Change(proposal=proposal, status_from=before, status_to=after)
    if not change.status_changed:
        return change
    return _finish(session, change, action="proposal.status", entity="proposal", entity_id=proposal.id,
                   actor=actor, detail={"from": before, "to": after})
