"""Duplicate proposals: merge one into another, undo the merge, mark a pair
重複ではない or withdraw that mark. One command each, one transaction with its
event (and the NPO's e-mail for a merge and its undo), one commit, as in
:mod:`office.commands`.

A merged proposal keeps its text, its decisions and its messages; it gets
the stage 取り下げ and ``merged_into_id``, so one lifecycle goes on (the kept
proposal's). Its NPO is told by e-mail, and its status page says where it
went: the kept proposal's receipt number, never that proposal's private link.
``unmerge`` undoes the newest merge, restores the stage it had and tells the
NPO by e-mail that its proposal is reviewed on its own again.
"""

from __future__ import annotations

from sqlmodel import Session

from models.clock import as_utc
from models.labels import Stage
from models.outbox import enqueue
from models.related import (
    MERGE_ACTION,
    add_not_duplicate,
    last_merge_event,
    merged_from,
    remove_not_duplicate,
)
from models.tables import AuditEvent, Proposal
from office.commands import NOBODY, Actor, Change, _bump_version, finish, move_stage

MERGED_STAGE = Stage.WITHDRAWN.value
UNDO_NOT_DUPLICATE_ACTION = "proposal.not_duplicate_undo"


class MergeRefused(ValueError):
    """A merge, unmerge or mark that cannot be done; nothing was written."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _check_merge(session: Session, proposal: Proposal, into: Proposal) -> None:
    if proposal.id == into.id:
        raise MergeRefused("提案を自分自身に統合することはできません。")
    if proposal.merged_into_id is not None:
        raise MergeRefused("この提案はすでにほかの提案に統合されています。")
    if into.merged_into_id is not None:
        raise MergeRefused("統合先の提案はすでにほかの提案に統合されています。統合先の提案を選んでください。")
    assert proposal.id is not None
    if merged_from(session=session, proposal_id=proposal.id):
        raise MergeRefused("この提案にはほかの提案が統合されています。先にそれらの統合を取り消してください。")


def merge_proposals(*, session: Session, proposal: Proposal, into: Proposal, actor: Actor = NOBODY,
                    expected_version: int | None = None) -> Change:
    """Merge ``proposal`` into ``into``: both texts kept, ``proposal`` gets
    取り下げ and ``merged_into_id``, its NPO an e-mail, one event
    ``proposal.merge``, one commit. MergeRefused (nothing written) for a
    proposal merged already, a target merged itself, or a proposal others
    were merged into; StaleDecision when ``expected_version`` is outdated."""
    _check_merge(session, proposal, into)
    _bump_version(session, proposal, expected_version)
    proposal.merged_into_id = into.id
    before, after = move_stage(session, proposal, MERGED_STAGE)
    session.add(proposal)
    enqueue(session=session, kind="merged", to=proposal.email, proposal_id=proposal.id,
            context={"receipt_number": proposal.receipt_number, "title": proposal.title,
                     "into_receipt_number": into.receipt_number})
    change = Change(proposal=proposal, stage_from=before, stage_to=after)
    detail = {"proposal_id": proposal.id, "into_id": into.id, "into_receipt_number": into.receipt_number,
              "stage": {"from": before, "to": after}}
    return finish(session, change, action=MERGE_ACTION, entity="proposal", entity_id=proposal.id or "",
                  actor=actor, detail=detail)


def unmerge(*, session: Session, proposal: Proposal, actor: Actor = NOBODY,
            expected_version: int | None = None) -> Change:
    """Undo the merge of ``proposal``: ``merged_into_id`` cleared, the stage it
    had before the merge restored (unless a coordinator moved it since), its
    NPO an e-mail (kind ``unmerged``), one event ``proposal.unmerge``, one
    commit. MergeRefused (nothing written) when it is not merged."""
    assert proposal.id is not None
    into_id = proposal.merged_into_id
    if into_id is None:
        raise MergeRefused("この提案はほかの提案に統合されていません。")
    event = last_merge_event(session=session, proposal_id=proposal.id)
    _bump_version(session, proposal, expected_version)
    restored = _stage_before(event) if proposal.stage == MERGED_STAGE else proposal.stage
    proposal.merged_into_id = None
    before, after = move_stage(session, proposal, restored)
    session.add(proposal)
    into = session.get(Proposal, into_id)
    enqueue(session=session, kind="unmerged", to=proposal.email, proposal_id=proposal.id,
            context={"receipt_number": proposal.receipt_number, "title": proposal.title,
                     "into_receipt_number": into.receipt_number if into is not None else None})
    change = Change(proposal=proposal, stage_from=before, stage_to=after)
    detail = {"proposal_id": proposal.id, "into_id": into_id, "undoes_event_id": event.id if event else None,
              "stage": {"from": before, "to": after}}
    return finish(session, change, action="proposal.unmerge", entity="proposal", entity_id=proposal.id,
                  actor=actor, detail=detail)


def _stage_before(event: AuditEvent | None) -> str:
    """The stage the merge event recorded before it (受付 when unknown)."""
    stage = (event.detail.get("stage") or {}).get("from") if event is not None else None
    return str(stage) if stage in Stage._value2member_map_ else Stage.RECEIVED.value


def mark_not_duplicate(*, session: Session, proposal: Proposal, other: Proposal, actor: Actor = NOBODY) -> bool:
    """重複ではない for the pair: stored per pair, so the flag stays off across
    rematches; one event ``proposal.not_duplicate``, one commit. False (and
    nothing written) when the pair was marked already."""
    assert proposal.id is not None and other.id is not None
    if proposal.id == other.id:
        raise MergeRefused("同じ提案どうしは比べられません。")
    mark = add_not_duplicate(session=session, proposal_id=proposal.id, other_id=other.id,
                             actor=actor.name, user_id=actor.user_id)
    if mark is None:
        return False
    finish(session, Change(proposal=proposal), action="proposal.not_duplicate", entity="proposal",
           entity_id=proposal.id, actor=actor, detail={"proposal_id": proposal.id, "other_id": other.id})
    return True


def withdraw_not_duplicate(*, session: Session, proposal: Proposal, other: Proposal, actor: Actor = NOBODY) -> bool:
    """Withdraw the pair's 重複ではない: the mark deleted, so the flag shows
    again if the stored run still finds the pair a likely duplicate; one event
    ``proposal.not_duplicate_undo``, one commit. False (and nothing written)
    when the pair was not marked."""
    assert proposal.id is not None and other.id is not None
    mark = remove_not_duplicate(session=session, proposal_id=proposal.id, other_id=other.id)
    if mark is None:
        return False
    detail = {"proposal_id": proposal.id, "other_id": other.id, "marked_by": mark.actor,
              "marked_at": as_utc(mark.created_at).isoformat()}
    finish(session, Change(proposal=proposal), action=UNDO_NOT_DUPLICATE_ACTION, entity="proposal",
           entity_id=proposal.id, actor=actor, detail=detail)
    return True
