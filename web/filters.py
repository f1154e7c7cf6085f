"""Jinja filters and globals shared by every page."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from corpus.programs import split_departments
from models.clock import to_jst
from models.labels import (
    AUDIT_ACTIONS,
    LABELS,
    CollaborationType,
    MailStatus,
    Opinion,
    RequestStatus,
    RunStatus,
    Stage,
    Verdict,
)
from models.suggestions import comparable_score
from models.tables import MatchOutcome
from web.db import get_matching
from web.highlight import highlight, shown_terms, term_lemmas


def jst(value: datetime | None, fmt: str = "%Y年%m月%d日 %H:%M") -> str:
    """A stored naive-UTC time in Japan time."""
    if value is None:
        return "—"
    return to_jst(value).strftime(fmt)


def jst_date(value: datetime | None) -> str:
    return jst(value, "%Y年%m月%d日")


def stage_label(code: str) -> str:
    return LABELS[Stage(code)] if code in Stage._value2member_map_ else code


def collaboration_label(code: str) -> str:
    if code in CollaborationType._value2member_map_:
        return LABELS[CollaborationType(code)]
    return code


def run_status_label(code: str) -> str:
    return LABELS[RunStatus(code)] if code in RunStatus._value2member_map_ else code


def verdict_label(code: str | None) -> str:
    if code is not None and code in Verdict._value2member_map_:
        return LABELS[Verdict(code)]
    return "未判断"


def unlikely_match(outcome: MatchOutcome | None) -> bool:
    """該当なしの可能性: the matcher's no_match verdict for the published run,
    as it computed it (stored beside the suggestions). A proposal without an
    outcome (matched before outcomes were stored, or never matched) shows none."""
    return bool(outcome is not None and outcome.no_match)


def score_width(score: float | None) -> float:
    """Percent of the score bar: the score on the matching service's comparable scale."""
    low, high = get_matching().comparable_scale
    value = min(max(score or 0.0, low), high)
    return 100.0 * (value - low) / (high - low)


_CODES = {"request": RequestStatus, "opinion": Opinion, "mail": MailStatus, "stage": Stage}
MAIL_KINDS = {"receipt": "受付のお知らせ", "answer": "回答のお知らせ", "opinion_request": "所見のご依頼",
              "reminder": "所見の督促", "digest": "日次のまとめ",
              "merged": "提案の統合のお知らせ"}


def code_label(code: str | None, kind: str) -> str:
    """The Japanese label of a stored code of one of the workflow's enums."""
    enum = _CODES[kind]
    if code is None or code not in enum._value2member_map_:
        return code or "—"
    return LABELS[enum(code)]


def action_label(action: str) -> str:
    return AUDIT_ACTIONS.get(action, action)


def mail_kind_label(kind: str) -> str:
    return MAIL_KINDS.get(kind, kind)


def _today() -> object:
    from models.clock import JST, utcnow

    return utcnow().astimezone(JST).date()


def init_app(app: Flask) -> None:
    app.add_template_filter(code_label)
    app.add_template_filter(mail_kind_label)
    app.add_template_filter(action_label)
    app.context_processor(lambda: {"today": _today()})
    app.add_template_global(unlikely_match)
    app.add_template_filter(score_width)
    app.add_template_filter(comparable_score)
    app.add_template_filter(shown_terms)
    app.add_template_filter(term_lemmas)
    app.add_template_filter(jst)
    app.add_template_filter(jst_date)
    app.add_template_filter(stage_label)
    app.add_template_filter(collaboration_label)
    app.add_template_filter(run_status_label)
    app.add_template_filter(verdict_label)
    app.add_template_filter(split_departments, "departments")
    app.add_template_global(highlight)
