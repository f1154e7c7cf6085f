"""The public side: the proposal form, its receipt and the private status page."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    after_this_request,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlmodel import Session

from models.labels import LABELS, Stage
from models.proposals import get_proposal, get_proposal_by_token
from models.tables import PROPOSAL_LIMITS, Proposal, ProposalCreate
from models.workflow import project_of, published_answers
from office.answers import withdraw_by_proposer
from office.intake import receive_proposal
from office.service import MatchingService
from web.db import get_engine, get_matching, get_session
from web.forms import ProposalForm
from web.ratelimit import submit_limit
from web.workflow_forms import WithdrawForm

bp = Blueprint("public", __name__)

# Status tokens are secrets.token_urlsafe(24): 32 characters of [A-Za-z0-9_-].
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class Submitted:
    """What the submitter is told once: the receipt and the private status link."""

    proposal: Proposal
    token: str


def submit_proposal(
    *, db: Session, data: dict[str, object], matching: MatchingService, lexical_only: bool = False,
) -> Submitted:
    """Store a validated proposal and its first suggestions at once
    (``lexical_only``: see :func:`office.online.suggest_online`)."""
    proposal, token = receive_proposal(session=db, proposal_in=ProposalCreate.model_validate(data))
    assert proposal.id is not None
    try:
        matching.suggest_online(session=db, proposal_ids=[proposal.id], lexical_only=lexical_only)
    except LookupError:
        # No active programs yet: the proposal is kept; the next rematch matches it.
        db.rollback()
        current_app.logger.warning("proposal %s stored without suggestions: no programs", proposal.id)
    return Submitted(proposal=proposal, token=token)


def submit(data: dict[str, object]) -> Submitted:
    """``submit_proposal`` with the app's database and settings.

    With the semantic layer on, the submitter does not wait for the embedding
    (0.1–0.5 s on a long proposal, docs/benchmarks.md): the proposal is
    stored with TF-IDF suggestions at once, and the fused ones replace them
    as soon as the response has been sent, in the same worker. If that
    second step fails, the TF-IDF suggestions stay until the nightly rematch.
    """
    matching = get_matching()
    deferred = matching.is_semantic
    submitted = submit_proposal(db=get_session(), data=data, matching=matching, lexical_only=deferred)
    if deferred:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        proposal_id = submitted.proposal.id
        assert proposal_id is not None

        @after_this_request
        def _then_semantic(response: Response) -> Response:
            response.call_on_close(partial(_suggest_semantic, app, proposal_id))
            return response

    return submitted


def _suggest_semantic(app: Flask, proposal_id: int) -> None:
    """The fused suggestions of a proposal just submitted (after the response)."""
    with app.app_context(), Session(get_engine(app), expire_on_commit=False) as db:
        try:
            get_matching(app).suggest_online(session=db, proposal_ids=[proposal_id])
        except Exception:  # the TF-IDF suggestions stay; the rematch redoes it
            db.rollback()
            app.logger.exception("semantic suggestions for proposal %s failed; TF-IDF ones kept", proposal_id)


def status_url(token: str) -> str:
    return url_for("public.status", token=token, _external=True)


def status_label(status: str) -> str:
    return LABELS[Stage(status)]


@bp.route("/")
def index():  # type: ignore[no-untyped-def]
    """The landing page: what this is and the link to the form."""
    return render_template("index.html")


# The form's two steps: "confirm" shows what will be sent, "edit" goes back to
# the form with the input kept; anything else (the confirmation page's
# 提案を送信, or a client posting directly) stores the proposal.
CONFIRM, EDIT = "confirm", "edit"


@bp.route("/proposals/new", methods=["GET", "POST"])
@submit_limit
def new_proposal():  # type: ignore[no-untyped-def]
    """The proposal form, its confirmation page, then the receipt."""
    form = ProposalForm()
    action = request.form.get("action", "")
    if form.validate_on_submit():
        if action == CONFIRM:
            return render_template("proposal_confirm.html", form=form)
        if action != EDIT:
            submitted = submit(form.proposal_data())
            session["receipt"] = {"id": submitted.proposal.id, "token": submitted.token}
            return redirect(url_for("public.receipt"), 303)
    status = 400 if form.errors else 200
    return render_template("proposal_form.html", form=form), status


@bp.route("/proposals/receipt")
def receipt():  # type: ignore[no-untyped-def]
    """The receipt of this browser session's last submission."""
    shown = session.get("receipt")
    if not shown:
        abort(404)
    proposal = get_proposal(session=get_session(), proposal_id=int(shown["id"]))
    if proposal is None:
        abort(404)
    return render_template(
        "receipt.html", proposal=proposal, status_url=status_url(shown["token"]), rules=PROPOSAL_LIMITS
    )


def _proposal_of_token(token: str) -> Proposal:
    if not (20 <= len(token) <= 64) or not set(token) <= _TOKEN_CHARS:
        abort(404)
    proposal = get_proposal_by_token(session=get_session(), token=token)
    if proposal is None:
        abort(404)
    return proposal


def _status_page(token: str, proposal: Proposal, form: WithdrawForm, status: int = 200) -> Any:
    db = get_session()
    assert proposal.id is not None
    published = published_answers(session=db, proposal_id=proposal.id)
    last = published[-1] if published else None
    project = project_of(session=db, proposal_id=proposal.id)
    stage = last.stage if last else Stage.RECEIVED.value
    return render_template(
        "status.html", proposal=proposal, status=status_label(stage), answer=last, history=published,
        project=project, form=form, token=token, can_withdraw=stage not in CLOSED_STAGES,
        contact=current_app.config["SUPPORT_OFFICE_CONTACT"],
    ), status


# Stages after which a proposal cannot be withdrawn by its NPO.
CLOSED_STAGES = (Stage.WITHDRAWN.value, Stage.NOT_ADOPTED.value, Stage.COMPLETED.value)


@bp.route("/status/<token>")
def status(token: str):  # type: ignore[no-untyped-def]
    """The submitter's private page: the published stage and answer, the
    department in charge of an adopted proposal, the office's contact; never
    internal notes, pair decisions or 所見."""
    return _status_page(token, _proposal_of_token(token), WithdrawForm())


@bp.route("/status/<token>/withdraw", methods=["POST"])
def withdraw(token: str):  # type: ignore[no-untyped-def]
    """取り下げ by the NPO, after ticking the confirmation box."""
    proposal = _proposal_of_token(token)
    form = WithdrawForm()
    if not form.validate_on_submit():
        return _status_page(token, proposal, form, 400)
    try:
        withdraw_by_proposer(session=get_session(), proposal=proposal)
    except ValueError:
        form.confirm.errors = ["この提案はすでに取り下げ、不採択または完了のため、取り下げできません。"]
        return _status_page(token, proposal, form, 400)
    flash("提案を取り下げました。", "info")
    return redirect(url_for("public.status", token=token), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
