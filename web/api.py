"""JSON API under /api/v1. Creating a proposal is public (same validation and
rate limit as the form); everything else needs ``Authorization: Bearer TOKEN``
(tokens from ``kyodo tokens create``). Errors are JSON with a message."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any, get_args

from flask import Blueprint, Flask, abort, g, jsonify, request, url_for
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import func
from sqlmodel import select
from werkzeug.datastructures import MultiDict

from models.decisions import current_decisions, decision_history, is_standing
from models.labels import LABELS, Stage, parse_collaboration_type
from models.related import RelatedItem, related_for
from models.review import programs_by_id, search_programs
from models.suggestions import outcomes_for, recent_runs, suggestions_for_proposal
from models.tables import (
    Decision,
    DecisionPublic,
    MatchRun,
    MatchRunPublic,
    Program,
    ProgramPublic,
    Proposal,
    ProposalBase,
    ProposalPublic,
    RelatedProposalPublic,
    Suggestion,
    SuggestionItem,
)
from models.theme_tables import ThemeDetailPublic, ThemePublic
from models.themes import ThemeSummary, theme_summaries
from office import commands
from office.accounts import token_user
from office.commands import Actor
from office.themes import ThemePage, theme_page
from web.db import get_session
from web.errors import json_error
from web.filters import unlikely_match
from web.forms import ProposalForm
from web.highlight import stored_terms
from web.openapi import openapi_document
from web.public import status_url, submit
from web.ratelimit import submit_limit

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The keys of a proposal's create body: the fields the NPO writes (models.tables).
PROPOSAL_KEYS = tuple(ProposalBase.model_fields)
_INTEGER_KEYS = frozenset(
    key for key, info in ProposalBase.model_fields.items() if info.annotation is int or int in get_args(info.annotation)
)
MAX_ID = 2**31 - 1  # larger ids cannot exist (and overflow PostgreSQL's integer)
MAX_PER_PAGE = 100


class BadRequest(Exception):
    """A 400 with the message and, for validation, the messages per field."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message, self.fields = message, fields or {}


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest) -> Any:
    response = jsonify(error="bad_request", message=exc.message, fields=exc.fields)
    return response, 400


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """401 without a valid bearer token, 403 when its user is deactivated."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("Authorization: Bearer TOKEN が必要です。")
        found = token_user(session=get_session(), token=token.strip())
        if found is None:
            return _unauthorized("APIトークンが無効か、取り消されています。")
        if found.user is not None and not found.user.is_active:
            return json_error(403, "このトークンの利用者は無効化されています。", "forbidden")
        g.api_actor = found.actor
        g.api_user_id = found.user.id if found.user is not None else None
        return view(*args, **kwargs)

    return checked


def _unauthorized(message: str) -> Any:
    response = json_error(401, message, "unauthorized")
    response.headers["WWW-Authenticate"] = 'Bearer realm="kyodo-match"'
    return response


def _json_object() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # 100,000 nested brackets: no body of ours is that deep
        raise BadRequest("本文のJSONの入れ子が深すぎます。") from None
    if not isinstance(data, dict):
        raise BadRequest("本文はJSONオブジェクト（Content-Type: application/json）で送ってください。")
    return data


def _check_id(value: int) -> int:
    if value > MAX_ID:
        abort(404)
    return value


def _int_arg(name: str, default: int, lowest: int, highest: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 9 or not lowest <= int(raw) <= highest:
        message = f"{name} は {lowest} から {highest} の整数で指定してください。"
        raise BadRequest(message, {name: [message]})
    return int(raw)


# -- serializers ------------------------------------------------------------------


def proposal_json(p: Proposal) -> dict[str, Any]:
    """ProposalPublic as JSON: times in UTC with Z, an empty phone as null, the stage_label."""
    return ProposalPublic.model_validate(p).model_dump(mode="json")


def program_json(p: Program) -> dict[str, Any]:
    """ProgramPublic as JSON: the catalogue record without the plan's headings and source."""
    return ProgramPublic.model_validate(p).model_dump(mode="json")


def decision_json(d: Decision) -> dict[str, Any]:
    """DecisionPublic as JSON: decided_at in UTC with Z."""
    return DecisionPublic.model_validate(d).model_dump(mode="json")


def run_json(r: MatchRun) -> dict[str, Any]:
    """MatchRunPublic as JSON: times in UTC with Z, no fingerprint or mode."""
    return MatchRunPublic.model_validate(r).model_dump(mode="json")


def suggestion_json(s: Suggestion, program: Program | None, decision: Decision | None) -> dict[str, Any]:
    """SuggestionItem as JSON: the suggestion with its program's name and department
    ("" when the program is gone) and the pair's standing decision (null if none).
    Each term carries its kind: read by web.highlight.stored_terms, which infers
    the kind of rows stored before kinds existed (a 字: term is a kanji, a term
    of the キーワード field a keyword, a function-word lemma a function word)."""
    joined = {
        "program_name": program.name if program else "",
        "department": program.department if program else "",
        "decision": decision.verdict if decision is not None and is_standing(decision) else None,
        "terms": [[t.term, t.weight, t.field, t.kind] for t in stored_terms(s.terms)],
    }
    return SuggestionItem.model_validate(s, update=joined).model_dump(mode="json")


def related_json(item: RelatedItem) -> dict[str, Any]:
    """RelatedProposalPublic as JSON: the other proposal, the pair's scores rounded to 4 places."""
    other, row = item.other, item.row
    return RelatedProposalPublic(
        proposal_id=other.id or 0, receipt_number=other.receipt_number, title=other.title, stage=other.stage,
        stage_label=LABELS[Stage(other.stage)], rank=row.rank, score=round(row.score, 4),
        lexical_score=round(row.lexical, 4), semantic_score=None if row.semantic is None else round(row.semantic, 4),
        terms=[str(t) for t in row.terms], likely_duplicate=item.duplicate,
    ).model_dump(mode="json")


def theme_json(summary: ThemeSummary) -> dict[str, Any]:
    """ThemePublic as JSON: the theme with its open proposals' ids and how many groups."""
    theme = summary.theme
    return ThemePublic(id=theme.id or 0, label=theme.label, label_by_coordinator=theme.label_by_coordinator,
                       proposal_ids=[p.id for p in summary.proposals if p.id is not None],
                       organisation_count=len(summary.organisations)).model_dump(mode="json")


def theme_detail_json(page: ThemePage) -> dict[str, Any]:
    """ThemeDetailPublic as JSON: the theme page's proposals, shared programs and departments."""
    proposals = [{"id": p.id, "receipt_number": p.receipt_number, "title": p.title, "organization": p.organization,
                  "stage": p.stage, "stage_label": LABELS[Stage(p.stage)], "pinned": p.id in page.pinned}
                 for p in page.summary.proposals]
    return ThemeDetailPublic.model_validate({
        **theme_json(page.summary), "terms": [str(t) for t in page.theme.terms],
        "organisations": page.summary.organisations, "proposals": proposals,
        "programs": [{"id": p.id, "name": p.name, "department": p.department} for p in page.programs],
        "departments": page.departments,
    }).model_dump(mode="json")


def _page_json(rows: list[Any], page: int, per_page: int, total: int) -> dict[str, Any]:
    return {"items": rows, "page": page, "per_page": per_page, "total": total,
            "pages": max(1, math.ceil(total / per_page))}


# -- routes -------------------------------------------------------------------------


@bp.route("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    """The OpenAPI 3 document of this API."""
    return jsonify(openapi_document())


def _form_value(key: str, value: Any) -> str:
    """A JSON value as the form's text; BadRequest naming the field when its type is wrong."""
    if key in _INTEGER_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{key} は整数で指定してください。", {key: ["整数で指定してください。"]})
        return str(value)
    if not isinstance(value, str):
        raise BadRequest(f"{key} は文字列で指定してください。", {key: ["文字列で指定してください。"]})
    if key == "collaboration_type":
        try:
            return parse_collaboration_type(value).value if value.strip() else ""
        except ValueError:
            pass  # the form rejects it with its own message
    return value


def validate_proposal(data: dict[str, Any]) -> dict[str, object]:
    """The API body through the form's own validation (a null is an absent key);
    BadRequest with the messages per field."""
    unknown = sorted(set(data) - set(PROPOSAL_KEYS))
    if unknown:
        raise BadRequest("不明なキーがあります：" + ", ".join(unknown[:10]), {k: ["不明なキーです。"] for k in unknown[:10]})
    formdata: MultiDict[str, str] = MultiDict(
        [(key, _form_value(key, value)) for key, value in data.items() if value is not None]
    )
    form = ProposalForm(formdata=formdata, meta={"csrf": False})
    if not form.validate():
        raise BadRequest("入力内容に誤りがあります。", {k: list(v) for k, v in form.errors.items()})
    return form.proposal_data()


@bp.route("/proposals", methods=["POST"])
@submit_limit
def create_proposal():  # type: ignore[no-untyped-def]
    """Public: store a proposal with its first suggestions; 201 with the receipt."""
    submitted = submit(validate_proposal(_json_object()))
    p = submitted.proposal
    body = {"id": p.id, "receipt_number": p.receipt_number, "stage": p.stage,
            "status_url": status_url(submitted.token)}
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_proposal", proposal_id=p.id)
    return response


@bp.route("/proposals", methods=["GET"])
@token_required
def list_proposals():  # type: ignore[no-untyped-def]
    """Proposals, newest first, paginated; optional ?stage=."""
    page = _int_arg("page", 1, 1, 1_000_000)
    per_page = _int_arg("per_page", 25, 1, MAX_PER_PAGE)
    stage = request.args.get("stage")
    if stage is not None and stage not in Stage._value2member_map_:
        raise BadRequest(f"stage は {' / '.join(s.value for s in Stage)} のいずれかです。", {"stage": ["unknown stage"]})
    db = get_session()
    conditions = [Proposal.stage == stage] if stage else []
    total = int(db.exec(select(func.count()).select_from(Proposal).where(*conditions)).one())
    rows = db.exec(
        select(Proposal).where(*conditions).order_by(Proposal.id.desc())  # type: ignore[union-attr]
        .offset((page - 1) * per_page).limit(per_page)
    )
    return jsonify(_page_json([proposal_json(p) for p in rows], page, per_page, total))


def _proposal_or_404(proposal_id: int) -> Proposal:
    proposal = get_session().get(Proposal, _check_id(proposal_id))
    if proposal is None:
        abort(404)
    return proposal


@bp.route("/proposals/<int:proposal_id>")
@token_required
def get_proposal(proposal_id: int):  # type: ignore[no-untyped-def]
    """One proposal, with its stage and its draft and published answer."""
    from web.api_workflow import answer_state

    return jsonify({**proposal_json(_proposal_or_404(proposal_id)), "answer": answer_state(proposal_id)})


@bp.route("/proposals/<int:proposal_id>/suggestions")
@token_required
def suggestions(proposal_id: int):  # type: ignore[no-untyped-def]
    """The published suggestions of a proposal, best first, with the current decision."""
    proposal = _proposal_or_404(proposal_id)
    db = get_session()
    found = suggestions_for_proposal(session=db, proposal_id=proposal_id)
    programs = programs_by_id(session=db, ids=[s.program_id for s in found])
    current = {program: d for (_, program), d in current_decisions(session=db, proposal_ids=[proposal_id]).items()}
    items = [suggestion_json(s, programs.get(s.program_id), current.get(s.program_id)) for s in found]
    outcome = outcomes_for(session=db, proposal_ids=[proposal_id]).get(proposal_id)
    return jsonify({
        "proposal_id": proposal.id, "no_match": unlikely_match(outcome),
        "confidence": outcome.confidence if outcome is not None else None,
        "ambiguous": bool(outcome is not None and outcome.ambiguous), "items": items,
    })


@bp.route("/proposals/<int:proposal_id>/related")
@token_required
def related(proposal_id: int):  # type: ignore[no-untyped-def]
    """The most similar other proposals (any stage, any year), best first, with the duplicate flag."""
    proposal = _proposal_or_404(proposal_id)
    items = related_for(session=get_session(), proposal_id=proposal_id)
    return jsonify({"proposal_id": proposal.id, "merged_into_id": proposal.merged_into_id,
                    "items": [related_json(item) for item in items]})


@bp.route("/proposals/<int:proposal_id>/decisions", methods=["GET"])
@token_required
def decisions(proposal_id: int):  # type: ignore[no-untyped-def]
    """The decision history of a proposal, oldest first."""
    _proposal_or_404(proposal_id)
    rows = decision_history(session=get_session(), proposal_id=proposal_id)
    return jsonify({"proposal_id": proposal_id, "items": [decision_json(d) for d in rows]})


@bp.route("/proposals/<int:proposal_id>/decisions", methods=["POST"])
@token_required
def add_decision(proposal_id: int):  # type: ignore[no-untyped-def]
    """Record accepted / rejected / deferred on a pair; 201 with the decision."""
    proposal = _proposal_or_404(proposal_id)
    data = _json_object()
    program_id, verdict, note = data.get("program_id"), data.get("verdict"), data.get("note", "")
    if isinstance(program_id, bool) or not isinstance(program_id, int) or not 0 < program_id <= MAX_ID:
        raise BadRequest("program_id は事業の整数IDで指定してください。")
    if verdict not in ("accepted", "rejected", "deferred"):
        raise BadRequest("verdict は accepted / rejected / deferred のいずれかです。")
    if note is None:
        note = ""
    if not isinstance(note, str) or len(note) > 2000:
        raise BadRequest("note は2000文字以内の文字列です。")
    if set(data) - {"program_id", "verdict", "note"}:
        raise BadRequest("不明なキーがあります。")
    try:
        change = commands.decide(
            session=get_session(), proposal=proposal, program_id=program_id, verdict=verdict,
            note=note.strip(), actor=Actor(name=g.api_actor, user_id=g.api_user_id),
        )
    except LookupError:
        return json_error(404, "その事業はありません。", "not_found")
    return jsonify(decision_json(change.decisions[0])), 201


@bp.route("/programs")
@token_required
def list_programs():  # type: ignore[no-untyped-def]
    """The catalogue, searchable with ?q=, paginated."""
    page = _int_arg("page", 1, 1, 1_000_000)
    per_page = _int_arg("per_page", 25, 1, MAX_PER_PAGE)
    q = (request.args.get("q") or "").strip()[:100]
    found = search_programs(session=get_session(), q=q, page=page, page_size=per_page)
    return jsonify(_page_json([program_json(p) for p in found.rows], page, per_page, found.total))


@bp.route("/programs/<int:program_id>")
@token_required
def get_program(program_id: int):  # type: ignore[no-untyped-def]
    """One program."""
    program = get_session().get(Program, _check_id(program_id))
    if program is None:
        abort(404)
    return jsonify(program_json(program))


@bp.route("/themes")
@token_required
def list_themes():  # type: ignore[no-untyped-def]
    """Themes of the open proposals, most groups first (the dashboard's order), paginated."""
    page = _int_arg("page", 1, 1, 1_000_000)
    per_page = _int_arg("per_page", 25, 1, MAX_PER_PAGE)
    found = theme_summaries(session=get_session())
    rows = found[(page - 1) * per_page: page * per_page]
    return jsonify(_page_json([theme_json(s) for s in rows], page, per_page, len(found)))


@bp.route("/themes/<int:theme_id>")
@token_required
def get_theme(theme_id: int):  # type: ignore[no-untyped-def]
    """One theme: its open proposals, their organisations, the programs and departments they share."""
    page = theme_page(session=get_session(), theme_id=_check_id(theme_id))
    if page is None:
        abort(404)
    return jsonify(theme_detail_json(page))


@bp.route("/runs")
@token_required
def runs():  # type: ignore[no-untyped-def]
    """The rematch runs, newest first (the last 50)."""
    return jsonify({"items": [run_json(r) for r in recent_runs(session=get_session())]})


def init_app(app: Flask, csrf: CSRFProtect) -> None:
    # Bearer tokens (or nothing, for the public create) cannot be forged by
    # another site the way a cookie can: no CSRF token on the JSON API.
    csrf.exempt(bp)
    app.register_blueprint(bp)
