"""The public side: the proposal form, its receipt, the private status page
and the re-issue of a lost status link (docs/form.md)."""

from __future__ import annotations

import re
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

from models.labels import CLOSED_STAGES, LABELS, Stage
from models.proposals import get_proposal, get_proposal_by_token
from models.tables import PROPOSAL_LIMITS, Proposal, ProposalCreate
from models.workflow import project_of, published_answers, published_since
from office.answers import withdraw_by_proposer
from office.intake import receive_proposal, reissue_status_link
from office.service import MatchingService
from web.db import get_engine, get_matching, get_session
from web.forms import PublicProposalForm, StatusRecoverForm, confirmation_nonce, confirmation_token
from web.ratelimit import (
    claim_once,
    is_post,
    keep_once,
    limited_when,
    over_limit,
    release_once,
    take_once,
    too_many,
)
from web.security import no_store
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

    The submitter waits neither for the embedding (0.1–0.5 s on a long
    proposal, docs/benchmarks.md) nor for the related proposals (they read
    every stored proposal: about 2 s at 3,000): the proposal is stored with
    TF-IDF suggestions at once, and the full suggestions (fused in semantic
    mode) and related lists replace them as soon as the response has been
    sent, in the same worker, in either mode. If that second step fails, the
    TF-IDF suggestions stay until the nightly rematch.
    """
    matching = get_matching()
    submitted = submit_proposal(db=get_session(), data=data, matching=matching, lexical_only=True)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    proposal_id = submitted.proposal.id
    assert proposal_id is not None

    @after_this_request
    def _then_the_rest(response: Response) -> Response:
        response.call_on_close(partial(_suggest_semantic, app, proposal_id))
        return response

    return submitted


def _suggest_semantic(app: Flask, proposal_id: int) -> None:
    """The full suggestions (fused in semantic mode) and related proposals of a
    proposal just submitted (after the response)."""
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
# The confirmation page's one-time token (web.forms.confirmation_token).
ONCE_FIELD = "once"
SENT_KEPT = 5  # confirmations remembered per browser session: enough for the back button
# The status token waits this long, server-side, for the receipt page that
# shows it once (the GET that follows the POST's redirect); never in the cookie.
RECEIPT_SECONDS = 600


def _once() -> str | None:
    """The nonce of the posted confirmation token; None without one (or a forged one)."""
    token = request.form.get(ONCE_FIELD)
    return confirmation_nonce(current_app.config["SECRET_KEY"], token) if token else None


def _sent_before(nonce: str | None) -> dict[str, Any] | None:
    """The receipt of this browser's earlier post of the same confirmation."""
    sent: dict[str, Any] = session.get("sent") or {}
    return sent.get(nonce) if nonce else None


def _counts_as_submission() -> bool:
    """The rate limit counts the final 送信 (or a client's direct post), never the
    confirm, edit or error rounds, nor a second post of a confirmation already sent."""
    if request.method != "POST" or request.form.get("action", "") in (CONFIRM, EDIT):
        return False
    return _sent_before(_once()) is None


def _form_page(form: PublicProposalForm) -> Any:
    status = 400 if form.errors else 200
    return render_template(
        "proposal_form.html", form=form, rules=PROPOSAL_LIMITS, contact=current_app.config["SUPPORT_OFFICE_CONTACT"],
        retention=current_app.config["PRIVACY_RETENTION"],
    ), status


def _confirm_page(form: PublicProposalForm) -> Any:
    once = confirmation_token(current_app.config["SECRET_KEY"])
    return render_template("proposal_confirm.html", form=form, once=once, readings=form.readings())


def _receipt_of(submitted: Submitted) -> dict[str, Any]:
    """What the session carries to the receipt page: the proposal's id and the
    key of the one-time record holding its status token (the token stays
    server-side: the session cookie is signed, not encrypted)."""
    return {"id": submitted.proposal.id, "ref": keep_once(submitted.token, RECEIPT_SECONDS)}


def _show_receipt(shown: dict[str, Any], nonce: str | None = None) -> Any:
    session["receipt"] = shown
    if nonce:
        sent = {**(session.get("sent") or {}), nonce: shown}
        session["sent"] = dict(list(sent.items())[-SENT_KEPT:])
    return redirect(url_for("public.receipt"), 303)


def _send(form: PublicProposalForm) -> Any:
    """Store the proposal once per confirmation page: a second post of the same
    page (the back button, a double click) shows the first one's receipt."""
    if ONCE_FIELD not in request.form:  # a client posting the fields directly
        return _show_receipt(_receipt_of(submit(form.proposal_data())))
    nonce = _once()
    if nonce is None:
        flash("確認画面の有効期限が切れたため、まだ送信していません。内容を確認して、もう一度「提案を送信」を押してください。",
              "warning")
        return _confirm_page(form)
    first = _sent_before(nonce)
    if first is not None:
        flash("この提案は送信済みです。受付番号は前回と同じです（二重には登録していません）。", "info")
        return _show_receipt(first)
    if not claim_once(nonce):  # the same page posted at the same moment (a double click)
        return render_template(
            "error.html", code=409, title="この提案は送信済みです",
            message="同じ確認画面からの送信を、すでに受け付けています。二重には登録していません。"
                    "受付番号と状況確認ページのリンクは、入力したメールアドレスにお送りします。",
        ), 409
    try:
        submitted = submit(form.proposal_data())
    except Exception:
        release_once(nonce)  # nothing stored: the same page may be sent again
        raise
    return _show_receipt(_receipt_of(submitted), nonce)


@bp.route("/proposals/new", methods=["GET", "POST"])
@limited_when(_counts_as_submission)
def new_proposal():  # type: ignore[no-untyped-def]
    """The proposal form, its confirmation page, then the receipt."""
    form = PublicProposalForm()
    action = request.form.get("action", "")
    if not form.validate_on_submit() or action == EDIT:
        return _form_page(form)
    if action == CONFIRM:
        return _confirm_page(form)
    return _send(form)


@bp.route("/proposals/receipt")
def receipt():  # type: ignore[no-untyped-def]
    """The receipt of this browser session's last submission; its status link
    the first time only (afterwards: in the receipt e-mail)."""
    shown = session.get("receipt")
    if not shown:
        abort(404)
    proposal = get_proposal(session=get_session(), proposal_id=int(shown["id"]))
    if proposal is None:
        abort(404)
    token = take_once(str(shown["ref"])) if shown.get("ref") else None
    page = render_template(
        "receipt.html", proposal=proposal, status_url=status_url(token) if token else None, rules=PROPOSAL_LIMITS
    )
    return no_store(Response(page))


def _status_not_found() -> Response:
    """The 404 of a status link, with the way to a new one (an old link, after a re-issue, lands here)."""
    page = render_template(
        "error.html", code=404, title="ページが見つかりません", recover=True,
        message="この状況確認ページは見つかりません。リンクが途中で切れていないか確認してください。",
    )
    return Response(page, 404)


def _proposal_of_token(token: str) -> Proposal:
    if not (20 <= len(token) <= 64) or not set(token) <= _TOKEN_CHARS:
        abort(_status_not_found())
    proposal = get_proposal_by_token(session=get_session(), token=token)
    if proposal is None:
        abort(_status_not_found())
    return proposal


def _status_page(token: str, proposal: Proposal, form: WithdrawForm, status: int = 200) -> Any:
    db = get_session()
    assert proposal.id is not None
    published = published_answers(session=db, proposal_id=proposal.id)
    last = published[-1] if published else None
    project = project_of(session=db, proposal_id=proposal.id)
    if project is not None and not published_since(last, project.created_at):
        project = None  # recorded before the answer: internal until it is published
    stage = last.stage if last else Stage.RECEIVED.value
    return render_template(
        "status.html", proposal=proposal, status=status_label(stage), answer=last, history=published,
        project=project, form=form, token=token,
        # A merged proposal lives on in the one it was merged into: nothing left to withdraw here.
        can_withdraw=stage not in CLOSED_STAGES and proposal.merged_into_id is None,
        contact=current_app.config["SUPPORT_OFFICE_CONTACT"],
    ), status




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


# Re-issues per receipt number, from any address: someone who knows an NPO's
# receipt number and address cannot keep replacing its link.
RECOVER_PER_RECEIPT = "3/hour"


def _receipt_key(typed: str) -> str:
    # 2026-123 and 2026-000123 are one receipt number: counted together.
    return "-".join(str(int(part)) for part in re.findall(r"[0-9]{1,12}", typed)) or typed


@bp.route("/status/recover", methods=["GET", "POST"])
@limited_when(is_post, scope="recover")
def status_recover():  # type: ignore[no-untyped-def]
    """A lost status link: the receipt number and the e-mail address; a new
    link by e-mail if they match. The answer is the same whether they do or not."""
    form = StatusRecoverForm()
    if not form.validate_on_submit():
        return render_template("status_recover.html", form=form), 400 if form.errors else 200
    retry_after = over_limit("recover-receipt", _receipt_key(form.receipt_number.data), RECOVER_PER_RECEIPT)
    if retry_after is not None:
        return too_many(retry_after)
    reissue_status_link(session=get_session(), receipt_number=form.receipt_number.data, email=form.email.data)
    return redirect(url_for("public.status_recover_sent"), 303)


@bp.route("/status/recover/sent")
def status_recover_sent():  # type: ignore[no-untyped-def]
    return render_template("status_recover_sent.html")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
