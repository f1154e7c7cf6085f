"""Stored codes and their Japanese labels, in one place.

The database stores the English code; screens, exports and imports use the
label. Imports accept either.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """A proposal's stage in the city's process (事前相談 → 提案 → 所見 → 協議 → 採択 …).

    The coordinator moves it; the NPO sees a stage only once an answer saying
    it is published (``models.workflow_tables.Answer``).
    """

    RECEIVED = "received"  # 受付
    CHECKING = "checking"  # 確認中: the support office reads it
    CONSULTING = "consulting"  # 所見照会中: departments asked for their opinion
    NEGOTIATING = "negotiating"  # 協議中
    ADOPTED = "adopted"  # 採択: becomes a 協働事業
    NOT_ADOPTED = "not_adopted"  # 不採択
    RUNNING = "running"  # 実施中
    COMPLETED = "completed"  # 完了
    WITHDRAWN = "withdrawn"  # 取り下げ (by the NPO, or recorded for it)


# Stages after which nothing is awaited from the office (the queue's 未判断 count
# and the NPO's withdraw button leave them out).
CLOSED_STAGES = (Stage.NOT_ADOPTED.value, Stage.WITHDRAWN.value, Stage.COMPLETED.value)


class Opinion(StrEnum):
    """A department's 所見 on a proposal."""

    FEASIBLE = "feasible"
    CONDITIONAL = "conditional"
    DIFFICULT = "difficult"


class RequestStatus(StrEnum):
    """An opinion request (所見照会)."""

    OPEN = "open"
    ANSWERED = "answered"
    WITHDRAWN = "withdrawn"


class MailStatus(StrEnum):
    """A message of the outbox."""

    PENDING = "pending"  # waiting for its (next) attempt
    SENDING = "sending"  # claimed by a sender; see docs/mail.md for the crash window
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry; shown on the dashboard


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


class Confidence(StrEnum):
    """How sure the matcher is of a proposal's first suggestion
    (matcher.confidence; stored on match_outcome)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"  # the same as 該当なしの可能性 (no_match)


class _Labels(dict[StrEnum, str]):
    """Labels by enum member. StrEnum members hash and compare as their string,
    so ``Stage.WITHDRAWN`` and ``Verdict.WITHDRAWN`` (both "withdrawn") would
    share one dict key; this keys on the member's class as well."""

    def __init__(self, labels: list[tuple[StrEnum, str]]):
        # A list, not a dict literal: the literal would already merge the members.
        super().__init__()
        self._by_kind = {(type(member), member.value): text for member, text in labels}
        for member, text in labels:
            dict.__setitem__(self, member, text)

    def __getitem__(self, member: StrEnum) -> str:
        return self._by_kind[(type(member), member.value)]

    def get(self, member: StrEnum, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._by_kind.get((type(member), getattr(member, "value", member)), default)

    def __contains__(self, member: object) -> bool:
        return (type(member), getattr(member, "value", member)) in self._by_kind


LABELS: dict[StrEnum, str] = _Labels([
    (Stage.RECEIVED, "受付"),
    (Stage.CHECKING, "確認中"),
    (Stage.CONSULTING, "所見照会中"),
    (Stage.NEGOTIATING, "協議中"),
    (Stage.ADOPTED, "採択"),
    (Stage.NOT_ADOPTED, "不採択"),
    (Stage.RUNNING, "実施中"),
    (Stage.COMPLETED, "完了"),
    (Stage.WITHDRAWN, "取り下げ"),
    (Opinion.FEASIBLE, "協働できる"),
    (Opinion.CONDITIONAL, "条件付きで協働できる"),
    (Opinion.DIFFICULT, "難しい"),
    (RequestStatus.OPEN, "回答待ち"),
    (RequestStatus.ANSWERED, "回答済み"),
    (RequestStatus.WITHDRAWN, "取り下げ"),
    (MailStatus.PENDING, "送信待ち"),
    (MailStatus.SENDING, "送信中"),
    (MailStatus.SENT, "送信済み"),
    (MailStatus.FAILED, "送信失敗"),
    (CollaborationType.COMMISSION, "委託"),
    (CollaborationType.SUBSIDY, "補助"),
    (CollaborationType.CO_HOSTING, "共催"),
    (CollaborationType.ENDORSEMENT, "後援"),
    (CollaborationType.OTHER, "その他"),
    (Confidence.HIGH, "高"),
    (Confidence.MEDIUM, "中"),
    (Confidence.LOW, "低"),
    (Verdict.ACCEPTED, "採用"),
    (Verdict.REJECTED, "見送り"),
    (Verdict.DEFERRED, "保留"),
    (Verdict.WITHDRAWN, "取り消し"),
    (RunStatus.RUNNING, "実行中"),
    (RunStatus.SUCCEEDED, "完了"),
    (RunStatus.FAILED, "失敗"),
])


def label(code: StrEnum) -> str:
    """The Japanese label of a stored code: ``label(Stage.ADOPTED)`` → 採択."""
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


def parse_code(enum: type[StrEnum], text: str) -> StrEnum:
    """A member of ``enum`` from its code or its Japanese label; ValueError otherwise."""
    text = text.strip()
    for member in enum:
        if text in (member.value, LABELS[member]):
            return member
    raise ValueError(f"{text!r} is not one of {', '.join(m.value for m in enum)}")


# The audit trail's actions in Japanese (the stored code stays English, for
# scripts and the outbox readers).
AUDIT_ACTIONS: dict[str, str] = {
    "proposal.received": "提案の受付",
    "proposals.import": "紙の提案の取り込み",
    "decision": "組み合わせの判断",
    "decision.undo": "判断の取り消し",
    "decision.rest": "残りの候補を見送り",
    "proposal.stage": "段階の変更",
    "proposal.withdraw": "提案者による取り下げ",
    "opinion.request": "所見の依頼",
    "opinion.answer": "所見の回答",
    "opinion.withdraw": "所見の依頼の取り下げ",
    "opinion.remind": "所見の督促",
    "answer.draft": "回答の下書き",
    "answer.publish": "回答の公開",
    "project.save": "協働事業の記録",
    "project.joint": "複数の提案による協働事業の提案",
    "theme.rename": "テーマ名の変更",
    "theme.split": "テーマの分割",
    "theme.join": "テーマの統合",
    "programs.import": "事業一覧の取り込み",
    "programs.keywords": "キーワードの編集",
    "departments.import": "担当課の取り込み",
    "department.update": "担当課の編集",
    "mail.digest": "日次のまとめメール",
    "user.create": "支援室職員の登録",
    "token.create": "APIトークンの発行",
    "token.revoke": "APIトークンの取り消し",
    "user.disable": "支援室職員の無効化",
    "user.enable": "支援室職員の再有効化",
    "user.password": "パスワードの再設定",
    "user.update": "支援室職員の情報の変更",
    "auth.login": "ログイン",
    "auth.login_failed": "ログインの失敗",
    "auth.logout": "ログアウト",
    "proposal.link_reissued": "状況確認リンクの再発行",
    "rematch.request": "再マッチの予約（今すぐ再マッチ）",
    "proposal.merge": "重複した提案の統合",
    "proposal.unmerge": "提案の統合の取り消し",
    "proposal.not_duplicate": "重複ではないとの確認",
    "proposal.not_duplicate_undo": "重複ではないとの確認の取り消し",
    "theme.undo": "テーマの編集の取り消し",
}
