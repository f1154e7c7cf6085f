"""The audit trail in Japanese sentences, with links to what each event is about:
「佐藤が『子ども食堂…』と『…事業』の組み合わせを採用」. The stored event keeps
its English code and JSON detail (for scripts and outbox readers); only the
page reads like this."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import url_for
from markupsafe import Markup, escape
from sqlmodel import Session

from models.labels import AUDIT_ACTIONS, LABELS, Stage, Verdict
from models.review import programs_by_id, proposals_by_id
from models.tables import AuditEvent, Program, Proposal


@dataclass
class Names:
    """The proposals and programs a page of events refers to, read once."""

    proposals: dict[int, Proposal]
    programs: dict[int, Program]

    def proposal(self, value: Any) -> Markup:
        found = self.proposals.get(_int(value))
        if found is None:
            return Markup("（削除された提案）") if value else Markup("")
        link = url_for("review.proposal", proposal_id=found.id)
        return Markup('<a href="{}">『{}』</a>').format(link, _short(found.title))

    def program(self, value: Any) -> Markup:
        found = self.programs.get(_int(value))
        if found is None:
            return Markup("（事業 {}）").format(value)
        link = url_for("programs.program", program_id=found.id)
        return Markup('<a href="{}">『{}』</a>').format(link, _short(found.name))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _label(enum: type[Any], code: Any) -> str:
    return LABELS[enum(code)] if isinstance(code, str) and code in enum._value2member_map_ else str(code or "")


def names_for(*, session: Session, events: Iterable[AuditEvent]) -> Names:
    proposal_ids: set[int] = set()
    program_ids: set[int] = set()
    for event in events:
        detail = event.detail or {}
        proposal_ids.update(_int(detail.get(key)) for key in ("proposal_id", "into_id", "other_id"))
        if event.entity == "proposal":
            proposal_ids.add(_int(event.entity_id))
        program_ids.add(_int(detail.get("program_id")))
    proposal_ids.discard(0)
    program_ids.discard(0)
    return Names(proposals=proposals_by_id(session=session, ids=proposal_ids),
                 programs=programs_by_id(session=session, ids=program_ids))


def _who(event: AuditEvent) -> Markup:
    return escape(event.actor or "システム")


def _proposal_of(event: AuditEvent, names: Names) -> Markup:
    detail = event.detail or {}
    return names.proposal(detail.get("proposal_id") or (event.entity_id if event.entity == "proposal" else None))


def _decision(event: AuditEvent, names: Names) -> Markup:
    d = event.detail or {}
    how = "手動で組み合わせて採用" if d.get("by_hand") else _label(Verdict, d.get("verdict"))
    return Markup("{}が{}と{}の組み合わせを{}").format(
        _who(event), names.proposal(d.get("proposal_id")), names.program(d.get("program_id")), how)


def _undo(event: AuditEvent, names: Names) -> Markup:
    d = event.detail or {}
    return Markup("{}が{}と{}の判断「{}」（決定 #{}）を取り消し").format(
        _who(event), names.proposal(d.get("proposal_id")), names.program(d.get("program_id")),
        _label(Verdict, d.get("undone")), event.entity_id)


def _stage(event: AuditEvent, names: Names) -> Markup:
    d = event.detail or {}
    return Markup("{}が{}の段階を「{}」から「{}」に変更").format(
        _who(event), _proposal_of(event, names), _label(Stage, d.get("from")), _label(Stage, d.get("to")))


def _simple(template: str) -> Callable[[AuditEvent, Names], Markup]:
    """A sentence with {who} and {proposal}, and any detail key as {key}."""

    def describe(event: AuditEvent, names: Names) -> Markup:
        detail = dict(event.detail or {})
        stage = detail.get("stage")
        if isinstance(stage, dict):  # {"from", "to"}: the stage it moved to
            stage = stage.get("to")
        if stage is not None:
            detail["stage"] = _label(Stage, stage)
        values = {k: "、".join(map(str, v)) if isinstance(v, list) else v for k, v in detail.items()}
        return Markup(template).format(who=_who(event), proposal=_proposal_of(event, names), **values)

    return describe


def _theme_edit(action: Any) -> str:
    """The undone theme edit: テーマ名の変更, テーマの分割, テーマの統合."""
    return AUDIT_ACTIONS.get(str(action), "編集")


SENTENCES: dict[str, Callable[[AuditEvent, Names], Markup]] = {
    "decision": _decision,
    "decision.undo": _undo,
    "proposal.stage": _stage,
    "proposal.received": _simple("{proposal}を受け付け"),
    "proposal.withdraw": _simple("提案者が{proposal}を取り下げ"),
    "opinion.request": _simple("{who}が{proposal}について {departments} に所見を依頼"),
    "opinion.answer": _simple("{department}が{proposal}に所見「{label}」を回答"),
    "opinion.withdraw": _simple("{who}が{proposal}の所見の依頼を取り下げ"),
    "answer.draft": _simple("{who}が{proposal}への回答（{stage}）を下書き保存"),
    "answer.publish": _simple("{who}が{proposal}への回答（{stage}）を公開"),
    "project.save": _simple("{who}が{proposal}の協働事業「{name}」を記録"),
    "proposal.merge": lambda event, names: Markup("{}が{}を{}に統合").format(
        _who(event), _proposal_of(event, names), names.proposal((event.detail or {}).get("into_id"))),
    "proposal.unmerge": lambda event, names: Markup("{}が{}の{}への統合を取り消し").format(
        _who(event), _proposal_of(event, names), names.proposal((event.detail or {}).get("into_id"))),
    "proposal.not_duplicate": lambda event, names: Markup("{}が{}と{}は重複ではないと確認").format(
        _who(event), _proposal_of(event, names), names.proposal((event.detail or {}).get("other_id"))),
    "proposal.not_duplicate_undo": lambda event, names: Markup("{}が{}と{}は重複ではないとの確認を取り消し").format(
        _who(event), _proposal_of(event, names), names.proposal((event.detail or {}).get("other_id"))),
    "theme.rename": _simple("{who}がテーマ名を「{from}」から「{to}」に変更"),
    "theme.split": _simple("{who}がテーマを分け、新しいテーマ「{label}」を作成"),
    "theme.join": _simple("{who}がテーマ「{joined_label}」をほかのテーマに統合"),
    "theme.undo": lambda event, names: Markup("{}がテーマ「{}」の編集（{}）を取り消し").format(
        _who(event), (event.detail or {}).get("label", ""), _theme_edit((event.detail or {}).get("undone"))),
    "rematch.request": lambda event, names: Markup("{}が今すぐ再マッチを{}").format(
        _who(event), "予約" if (event.detail or {}).get("queued") else "依頼（実行中の再マッチに合流）"),
}


def sentence(event: AuditEvent, names: Names) -> Markup:
    """The event as a Japanese sentence; the action's label when there is no sentence for it."""
    describe = SENTENCES.get(event.action)
    if describe is not None:
        try:
            return describe(event, names)
        except (KeyError, IndexError, ValueError):  # an older event without every detail key
            pass
    return Markup("{}：{}").format(_who(event), AUDIT_ACTIONS.get(event.action, event.action))
