"""The coordinator's side of the collaboration workflow: 所見照会, the answer to
the NPO (draft, publish, in bulk), the 協働事業. Every route needs a login; each
view validates its form and calls one office command."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, current_app, flash, redirect, request, url_for
from pydantic import ValidationError
from werkzeug.wrappers import Response

from models.labels import LABELS, Stage
from models.tables import Proposal
from models.workflow import all_departments
from models.workflow_tables import OpinionRequest, OpinionRequestCreate
from office import answers, opinions
from office.opinions import OpinionLinks, RequestClosed
from web.auth import current_actor as _actor
from web.auth import require_login as _require_login
from web.db import get_session
from web.review import _render_proposal
from web.workflow_forms import AnswerForm, OpinionRequestForm, ProjectForm, PublishForm

bp = Blueprint("workflow", __name__)
bp.before_request(_require_login)


def opinion_links() -> OpinionLinks:
    """The app's signer of opinion links (its secret key, OPINION_LINK_DAYS)."""
    return OpinionLinks(current_app.config["SECRET_KEY"], current_app.config["OPINION_LINK_DAYS"])


def opinion_url(req: OpinionRequest) -> str:
    """The department's link (shown to the coordinator, for a department without e-mail)."""
    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    path = url_for("opinion_page.opinion", token=opinion_links().token(req))
    return base + path if base else url_for("opinion_page.opinion", token=opinion_links().token(req), _external=True)


def request_form() -> OpinionRequestForm:
    """The 所見照会 form, with the active departments as its choices."""
    form = OpinionRequestForm()
    form.departments.choices = [(d.name, d.name + ("" if d.email_list else "（メール未登録）"))
                                for d in all_departments(session=get_session(), active_only=True)]
    return form


def _proposal_or_404(proposal_id: int) -> Proposal:
    proposal = get_session().get(Proposal, proposal_id)
    if proposal is None:
        abort(404)
    return proposal


def _back(proposal_id: int, anchor: str = "") -> Response:
    return redirect(url_for("review.proposal", proposal_id=proposal_id) + anchor, 303)


@bp.route("/review/proposals/<int:proposal_id>/opinion-requests", methods=["POST"])
def ask(proposal_id: int) -> Any:
    """Ask the ticked departments for their 所見 (one e-mail each)."""
    proposal = _proposal_or_404(proposal_id)
    form = request_form()
    if not form.validate_on_submit():
        return _render_proposal(proposal_id, 400, request_form=form)
    wanted = [OpinionRequestCreate(department=name, message=form.message.data or "", due=form.due.data)
              for name in form.departments.data]
    try:
        _change, rows = opinions.request_opinions(
            session=get_session(), proposal=proposal, requests_in=wanted, links=opinion_links(),
            default_due_days=current_app.config["OPINION_DUE_DAYS"], actor=_actor(),
        )
    except LookupError as exc:
        get_session().rollback()
        form.departments.errors = [f"担当課「{exc.args[0]}」は登録されていないか、無効です。"]
        return _render_proposal(proposal_id, 400, request_form=form)
    flash(f"{len(rows)}件の担当課に所見を依頼しました。", "info")
    silent = [d.name for d in all_departments(session=get_session()) if d.name in form.departments.data
              and not d.email_list]
    if silent:
        flash(f"メールアドレスが未登録の担当課（{'、'.join(silent)}）にはメールが届きません。"
              "下の一覧の「回答用リンク」を直接お送りください。", "warning")
    return _back(proposal_id, "#opinions-h")


@bp.route("/review/opinion-requests/<int:request_id>/withdraw", methods=["POST"])
def withdraw(request_id: int) -> Any:
    """Withdraw an open 所見照会 (its link then says so)."""
    if not PublishForm().validate_on_submit():
        abort(400)
    req = get_session().get(OpinionRequest, request_id)
    if req is None:
        abort(404)
    try:
        opinions.withdraw_request(session=get_session(), request=req, actor=_actor())
        flash("所見の依頼を取り下げました。", "info")
    except RequestClosed:
        flash("この依頼はすでに回答済みか、取り下げ済みです。", "error")
    return _back(req.proposal_id, "#opinions-h")


@bp.route("/review/proposals/<int:proposal_id>/answer", methods=["POST"])
def answer(proposal_id: int) -> Any:
    """Save the draft answer; with 公開する, publish it at once."""
    proposal = _proposal_or_404(proposal_id)
    form = AnswerForm()
    if not form.validate_on_submit():
        return _render_proposal(proposal_id, 400, answer_form=form)
    answers.save_answer(session=get_session(), proposal=proposal, answer_in=form.to_model(), actor=_actor())
    if request.form.get("action") == "publish":
        answers.publish_answers(session=get_session(), proposals=[proposal], actor=_actor())
        flash(f"回答を公開しました（段階：{LABELS[Stage(form.stage.data)]}）。提案者にメールでお知らせします。", "info")
    else:
        flash("回答を下書きとして保存しました。提案者にはまだ表示されません。", "info")
    return _back(proposal_id, "#answer-h")


@bp.route("/review/answers/publish", methods=["POST"])
def publish_many() -> Any:
    """Publish the drafts of the proposals ticked in the queue, at once."""
    if not PublishForm().validate_on_submit():
        abort(400)
    ids = [int(raw) for raw in request.form.getlist("proposal_id") if raw.isdigit() and len(raw) < 10]
    db = get_session()
    proposals = [p for p in (db.get(Proposal, i) for i in ids) if p is not None]
    published = answers.publish_answers(session=db, proposals=proposals, actor=_actor())
    skipped = len(proposals) - len(published)
    message = f"{len(published)}件の回答を公開しました。"
    if skipped:
        message += f"（下書きのない{skipped}件は公開していません）"
    flash(message, "info" if published else "error")
    return redirect(request.referrer or url_for("review.queue"), 303)


@bp.route("/review/proposals/<int:proposal_id>/project", methods=["POST"])
def project(proposal_id: int) -> Any:
    """Record the 協働事業 of an adopted proposal."""
    proposal = _proposal_or_404(proposal_id)
    form = ProjectForm()
    if not form.validate_on_submit():
        return _render_proposal(proposal_id, 400, project_form=form)
    try:
        answers.save_project(session=get_session(), proposal=proposal, project_in=form.to_model(), actor=_actor())
    except (ValueError, ValidationError):
        get_session().rollback()
        form.name.errors = ["協働事業は、段階が「採択」「実施中」「完了」の提案にだけ記録できます。"]
        return _render_proposal(proposal_id, 400, project_form=form)
    flash("協働事業を記録しました。", "info")
    return _back(proposal_id, "#project-h")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
