"""The public side: the proposal form, its receipt and the private status page."""

from __future__ import annotations

from dataclasses import dataclass

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlmodel import Session

from models.labels import LABELS, ProposalStatus
from models.matching import suggest_online
from models.proposals import create_proposal, get_proposal, get_proposal_by_token
from models.tables import Proposal, ProposalCreate
from web.db import get_session
from web.forms import ProposalForm
from web.ratelimit import submit_limit

bp = Blueprint("public", __name__)

# Status tokens are secrets.token_urlsafe(24): 32 characters of [A-Za-z0-9_-].
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class Submitted:
    """What the submitter is told once: the receipt and the private status link."""

    proposal: Proposal
    token: str


def submit_proposal(
    *, db: Session, data: dict[str, object], index_path: str, top_k: int, mode: str = "lexical"
) -> Submitted:
    """Store a validated proposal and its first suggestions at once."""
    proposal, token = create_proposal(session=db, proposal_in=ProposalCreate.model_validate(data))
    assert proposal.id is not None
    try:
        suggest_online(session=db, proposal_ids=[proposal.id], index_path=index_path, top_k=top_k, mode=mode)
    except LookupError:
        # No active programs yet: the proposal is kept; the next rematch matches it.
        db.rollback()
        current_app.logger.warning("proposal %s stored without suggestions: no programs", proposal.id)
    return Submitted(proposal=proposal, token=token)


def submit(data: dict[str, object]) -> Submitted:
    """``submit_proposal`` with the app's database and settings."""
    config = current_app.config
    return submit_proposal(
        db=get_session(), data=data, index_path=config["INDEX_PATH"], top_k=config["TOP_K"],
        mode=config["MATCH_MODE"],
    )


def status_url(token: str) -> str:
    return url_for("public.status", token=token, _external=True)


def status_label(status: str) -> str:
    return LABELS[ProposalStatus(status)]


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
    return render_template("receipt.html", proposal=proposal, status_url=status_url(shown["token"]))


@bp.route("/status/<token>")
def status(token: str):  # type: ignore[no-untyped-def]
    """The submitter's private page: status and date of the last change, nothing else."""
    if not (20 <= len(token) <= 64) or not set(token) <= _TOKEN_CHARS:
        abort(404)
    proposal = get_proposal_by_token(session=get_session(), token=token)
    if proposal is None:
        abort(404)
    return render_template("status.html", proposal=proposal, status=status_label(proposal.status))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
