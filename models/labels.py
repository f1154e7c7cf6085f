"""Stored codes and their Japanese labels, in one place.

The database stores the English code; screens, exports and imports use the
label. Imports accept either.
"""

from __future__ import annotations

from enum import StrEnum


class ProposalStatus(StrEnum):
    RECEIVED = "received"
    REVIEWING = "reviewing"
    MATCHED = "matched"
    DECLINED = "declined"


class CollaborationType(StrEnum):
    COMMISSION = "commission"
    SUBSIDY = "subsidy"
    CO_HOSTING = "co_hosting"
    ENDORSEMENT = "endorsement"
    OTHER = "other"


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    # Written only by undo when the pair had no earlier verdict: the pair is
    # undecided again (the history keeps both rows).
    WITHDRAWN = "withdrawn"


# What a coordinator can choose on a pair (the buttons 採用 / 見送り / 保留).
CHOSEN_VERDICTS = (Verdict.ACCEPTED, Verdict.REJECTED, Verdict.DEFERRED)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


LABELS: dict[StrEnum, str] = {
    ProposalStatus.RECEIVED: "受付",
    ProposalStatus.REVIEWING: "検討中",
    ProposalStatus.MATCHED: "マッチ成立",
    ProposalStatus.DECLINED: "見送り",
    CollaborationType.COMMISSION: "委託",
    CollaborationType.SUBSIDY: "補助",
    CollaborationType.CO_HOSTING: "共催",
    CollaborationType.ENDORSEMENT: "後援",
    CollaborationType.OTHER: "その他",
    Verdict.ACCEPTED: "採用",
    Verdict.REJECTED: "見送り",
    Verdict.DEFERRED: "保留",
    Verdict.WITHDRAWN: "取り消し",
    RunStatus.RUNNING: "実行中",
    RunStatus.SUCCEEDED: "完了",
    RunStatus.FAILED: "失敗",
}


def label(code: StrEnum) -> str:
    """The Japanese label of a stored code: ``label(ProposalStatus.MATCHED)`` → マッチ成立."""
    return LABELS[code]


def parse_collaboration_type(text: str) -> CollaborationType:
    """A code or a Japanese label (``委託`` or ``commission``); ValueError otherwise."""
    text = text.strip()
    if not text:
        return CollaborationType.OTHER
    for member in CollaborationType:
        if text in (member.value, LABELS[member]):
            return member
    choices = "、".join(LABELS[m] for m in CollaborationType)
    raise ValueError(f"collaboration_type {text!r} is not one of {choices}")
