"""/api/v1 for the collaboration workflow: opinion requests, the department's
answer by the token of its link, the answer to the NPO. Routes join the API
blueprint of ``web.api`` (its bearer-token check, its JSON errors); bodies are
validated with the same SQLModel families as the forms."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import current_app, g, jsonify
from pydantic import ValidationError
from sqlmodel import SQLModel

from models.workflow import draft_answer, last_published, requests_for
from models.workflow_tables import (
    AnswerCreate,
    AnswerPublic,
    Department,
    OpinionAnswer,
    OpinionRequest,
    OpinionRequestCreate,
    OpinionRequestPublic,
)
from office import answers, opinions
from office.commands import Actor
from office.opinions import LinkExpired, LinkInvalid, RequestClosed
from web.api import BadRequest, _json_object, _proposal_or_404, bp, token_required
from web.db import get_session
from web.errors import json_error
from web.workflow import opinion_links

M = TypeVar("M", bound=SQLModel)


def validated(model: type[M], data: dict[str, Any]) -> M:
    """``model`` from a JSON object, or a 400 naming each bad or unknown field."""
    unknown = sorted(set(data) - set(model.model_fields))
    if unknown:
        raise BadRequest(f"不明な項目があります：{', '.join(unknown)}", {k: ["unknown field"] for k in unknown})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields: dict[str, list[str]] = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "body"
            fields.setdefault(name, []).append(error["msg"])
        raise BadRequest("入力内容に誤りがあります。", fields) from None


def _actor() -> Actor:
    return Actor(name=g.api_actor, user_id=g.api_user_id)


def request_json(req: OpinionRequest, department: Department) -> dict[str, Any]:
    """OpinionRequestPublic: never the link or its nonce."""
    data = {**req.model_dump(), "department": department.name}
    return OpinionRequestPublic.model_validate(data).model_dump(mode="json")


def answer_state(proposal_id: int) -> dict[str, Any]:
    """The proposal's draft and last published answer (GET /proposals/{id} shows it)."""
    db = get_session()
    draft, published = draft_answer(session=db, proposal_id=proposal_id), last_published(session=db, proposal_id=proposal_id)
    return {
        "draft": AnswerPublic.model_validate(draft).model_dump(mode="json") if draft else None,
        "published": AnswerPublic.model_validate(published).model_dump(mode="json") if published else None,
    }


@bp.route("/proposals/<int:proposal_id>/opinion-requests", methods=["GET"])
@token_required
def list_opinion_requests(proposal_id: int) -> Any:
    """The proposal's opinion requests and their answers, oldest first."""
    _proposal_or_404(proposal_id)
    rows = requests_for(session=get_session(), proposal_id=proposal_id)
    return jsonify({"items": [request_json(r, d) for r, d in rows]})


@bp.route("/proposals/<int:proposal_id>/opinion-requests", methods=["POST"])
@token_required
def create_opinion_request(proposal_id: int) -> Any:
    """Ask one department for its 所見: 201 with the request (never its link)."""
    proposal = _proposal_or_404(proposal_id)
    wanted = validated(OpinionRequestCreate, _json_object())
    db = get_session()
    try:
        _change, [row] = opinions.request_opinions(
            session=db, proposal=proposal, requests_in=[wanted], links=opinion_links(),
            default_due_days=current_app.config["OPINION_DUE_DAYS"], actor=_actor(),
        )
    except LookupError:
        db.rollback()
        raise BadRequest("その担当課は登録されていないか、無効です。", {"department": ["unknown department"]}) from None
    except ValueError:
        db.rollback()
        raise BadRequest("回答期限には今日以降の日付を指定してください。", {"due": ["in the past"]}) from None
    department = db.get(Department, row.department_id)
    assert department is not None
    return jsonify(request_json(row, department)), 201


@bp.route("/opinions/<token>", methods=["POST"])
def answer_opinion(token: str) -> Any:
    """The department answers with its link's token, no other authentication:
    201 once, 409 after, 404 for a bad token, 410 for an expired or withdrawn one."""
    db = get_session()
    try:
        req = opinion_links().open(session=db, token=token)
    except LinkExpired:
        return json_error(410, "このリンクは有効期限が切れています。", "gone")
    except LinkInvalid:
        return json_error(404, "このリンクは正しくありません。", "not_found")
    if req.status == "withdrawn":
        return json_error(410, "この所見のご依頼は取り下げられました。", "gone")
    answer = validated(OpinionAnswer, _json_object())
    try:
        opinions.answer_opinion(session=db, request=req, answer=answer)
    except RequestClosed:
        db.rollback()
        return json_error(409, "この依頼にはすでに回答があります。", "conflict")
    department = db.get(Department, req.department_id)
    assert department is not None
    return jsonify(request_json(req, department)), 201


@bp.route("/proposals/<int:proposal_id>/answer", methods=["PUT"])
@token_required
def put_answer(proposal_id: int) -> Any:
    """Save the draft answer (stage and text); the NPO sees nothing yet."""
    proposal = _proposal_or_404(proposal_id)
    answer_in = validated(AnswerCreate, _json_object())
    answers.save_answer(session=get_session(), proposal=proposal, answer_in=answer_in, actor=_actor())
    return jsonify(answer_state(proposal_id))


@bp.route("/proposals/<int:proposal_id>/answer/publish", methods=["POST"])
@token_required
def publish_answer(proposal_id: int) -> Any:
    """Publish the draft: the NPO's status page shows it and an e-mail goes; 409 without a draft."""
    proposal = _proposal_or_404(proposal_id)
    published = answers.publish_answers(session=get_session(), proposals=[proposal], actor=_actor())
    if not published:
        return json_error(409, "公開する下書きがありません。先に PUT …/answer で保存してください。", "conflict")
    return jsonify(answer_state(proposal_id))
