"""Jinja filters and globals shared by every page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from flask import Flask, current_app, g

from corpus.programs import split_departments
from matcher.index import DEFAULT_NO_MATCH_THRESHOLD, KANJI_PREFIX
from models.labels import LABELS, CollaborationType, ProposalStatus, RunStatus, Verdict
from models.matching import current_index
from models.review import comparable_score
from web.db import get_session
from web.highlight import highlight

JST = timezone(timedelta(hours=9), "JST")


def jst(value: datetime | None, fmt: str = "%Y年%m月%d日 %H:%M") -> str:
    """A stored naive-UTC time in Japan time."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(JST).strftime(fmt)


def jst_date(value: datetime | None) -> str:
    return jst(value, "%Y年%m月%d日")


def status_label(code: str) -> str:
    return LABELS.get(ProposalStatus(code), code) if code in ProposalStatus._value2member_map_ else code


def collaboration_label(code: str) -> str:
    if code in CollaborationType._value2member_map_:
        return LABELS[CollaborationType(code)]
    return code


def run_status_label(code: str) -> str:
    return LABELS[RunStatus(code)] if code in RunStatus._value2member_map_ else code


def verdict_label(code: str | None) -> str:
    if code in Verdict._value2member_map_:
        return LABELS[Verdict(code)]
    return "未判断"


def word_terms(terms: list) -> list[str]:
    """Shared words of a suggestion (its stored ``[term, weight, field]`` rows)."""
    return [t[0] for t in terms if not str(t[0]).startswith(KANJI_PREFIX)]


def kanji_terms(terms: list) -> list[str]:
    """Shared single kanji (the matcher's ``字:`` features), without the prefix.

    Shown apart and not highlighted: marking every 地 or 市 in two texts would
    bury the words that explain the pairing.
    """
    return [str(t[0])[len(KANJI_PREFIX) :] for t in terms if str(t[0]).startswith(KANJI_PREFIX)]


def _lexical_rule(
    best_lexical: float, _best_semantic: float | None = None, _best_exemplar: float | None = None
) -> bool:
    return best_lexical < DEFAULT_NO_MATCH_THRESHOLD


def no_match_rule() -> Callable[[float, float | None, float | None], bool]:
    """The no_match rule of the index that scored the suggestions shown, on a
    proposal's best TF-IDF and best e5 score (looked up once per request: a
    queue page asks for every row)."""
    if "no_match_rule" not in g:
        try:
            index = current_index(
                session=get_session(),
                index_path=current_app.config["INDEX_PATH"],
                mode=current_app.config["MATCH_MODE"],
            )
            g.no_match_rule = index.is_no_match
        except LookupError:  # no programs yet
            g.no_match_rule = _lexical_rule
    return g.no_match_rule  # type: ignore[no-any-return]


def unlikely_match(suggestions: list) -> bool:
    """True when no suggested program is a credible partner (matcher's no_match),
    decided by the current index's rule on the best stored scores, or when
    there is none. Pairs shown only because they were accepted do not count.

    A lexical row's score is its TF-IDF cosine; a semantic row keeps that in
    ``lexical_score`` and its e5 cosine in ``semantic_score`` (its ``score``,
    the fused z-score, cannot say that nothing fits).
    """
    ranked = [s for s in suggestions if not s.kept_by_decision]
    if not ranked:
        return True
    best_lexical = max(comparable_score(s) for s in ranked)
    semantic = [s.semantic_score for s in ranked if s.semantic_score is not None]
    # The matcher reads the nearest exemplar over all programs; the rows hold
    # those of the top-k, where an exemplar that close ranks its program.
    exemplar = [s.exemplar_score for s in ranked if s.exemplar_score is not None]
    return no_match_rule()(
        best_lexical, max(semantic) if semantic else None, max(exemplar) if exemplar else None
    )


def init_app(app: Flask) -> None:
    app.add_template_global(unlikely_match)
    app.add_template_filter(comparable_score)
    app.add_template_filter(word_terms)
    app.add_template_filter(kanji_terms)
    app.add_template_filter(jst)
    app.add_template_filter(jst_date)
    app.add_template_filter(status_label)
    app.add_template_filter(collaboration_label)
    app.add_template_filter(run_status_label)
    app.add_template_filter(verdict_label)
    app.add_template_filter(split_departments, "departments")
    app.add_template_global(highlight)
