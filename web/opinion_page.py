"""The department's one page: opened from the link in its e-mail, no account.

It shows the proposal without the NPO's contact details, the attached
programs and one short form. A tampered or replaced link is a 404, an expired
one a 410, an answered or withdrawn request shows the answer read-only (409
to a second POST); none of them changes anything.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, url_for
from sqlmodel import Session

from models.labels import RequestStatus
from models.tables import Program, Proposal
from models.workflow_tables import Department, OpinionRequest
from office import opinions
from office.opinions import LinkExpired, LinkInvalid, RequestClosed
from web.db import get_session
from web.workflow import opinion_links
from web.workflow_forms import OpinionAnswerForm

bp = Blueprint("opinion_page", __name__)


def _refused(kind: str, status: int) -> Any:
    return render_template("opinion_refused.html", kind=kind), status


def _page(db: Session, req: OpinionRequest, form: OpinionAnswerForm, token: str, status: int = 200) -> Any:
    proposal = db.get(Proposal, req.proposal_id)
    department = db.get(Department, req.department_id)
    programs = [p for p in (db.get(Program, i) for i in req.program_ids) if p is not None]
    return render_template("opinion.html", req=req, proposal=proposal, department=department, programs=programs,
                           form=form, token=token, closed=req.status != RequestStatus.OPEN.value), status


@bp.route("/opinions/<token>", methods=["GET", "POST"])
def opinion(token: str) -> Any:
    """The request and its form (GET), the department's answer (POST)."""
    db = get_session()
    try:
        req = opinion_links().open(session=db, token=token)
    except LinkExpired:
        return _refused("expired", 410)
    except LinkInvalid:
        return _refused("invalid", 404)
    form = OpinionAnswerForm()
    if req.status == RequestStatus.WITHDRAWN.value:
        return _refused("withdrawn", 410)
    if not form.is_submitted():
        return _page(db, req, form, token)
    if req.status != RequestStatus.OPEN.value:
        return _page(db, req, form, token, 409)
    if not form.validate():
        return _page(db, req, form, token, 400)
    try:
        opinions.answer_opinion(session=db, request=req, answer=form.to_model())
    except RequestClosed:  # answered by someone else a moment ago
        db.rollback()
        return _page(db, req, form, token, 409)
    flash("所見を送信しました。ご協力ありがとうございました。", "info")
    return redirect(url_for("opinion_page.opinion", token=token), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
