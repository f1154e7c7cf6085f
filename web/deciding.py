"""Deciding fast: the keyboard's endpoints on the proposal page (web/static/decide.js).

A decision sent by the page's script comes back as JSON instead of a new page
(``wants_json``), so a coordinator can go through a proposal with a few keys
and one page load; 「残りを見送り」 decides every other suggestion at once; and
「次の提案」 opens the next 未判断 proposal. Every change is still one office
command, checked against the page's version.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, request, url_for

from models.queue import is_reviewed, next_unreviewed
from models.suggestions import latest_run_id, suggestions_for_proposal
from models.tables import Proposal
from office import commands
from office.commands import Change, StaleDecision
from web.auth import current_actor as _actor
from web.auth import require_login as _require_login
from web.db import get_session
from web.review import _version
from web.workflow_forms import PublishForm

bp = Blueprint("deciding", __name__)
bp.before_request(_require_login)


def wants_json() -> bool:
    """The page's script asks for JSON (fetch with Accept: application/json)."""
    return request.accept_mimetypes.best == "application/json"


def change_json(change: Change) -> Any:
    """What the script needs after a change: the new version, whether the
    proposal is now 判断済み, and where 次の提案 goes."""
    proposal = change.proposal
    assert proposal.id is not None
    db = get_session()
    return jsonify(
        version=proposal.version, stage=proposal.stage,
        decided=[{"program_id": d.program_id, "verdict": d.verdict} for d in change.decisions],
        reviewed=is_reviewed(session=db, proposal_id=proposal.id, run_id=latest_run_id(session=db)),
        next=url_for("deciding.next_proposal", after=proposal.id),
    )


def stale_json(exc: StaleDecision) -> Any:
    response = jsonify(error="conflict", message=exc.message)
    response.status_code = 409
    return response


@bp.route("/review/proposals/<int:proposal_id>/reject-rest", methods=["POST"])
def reject_rest(proposal_id: int) -> Any:
    """見送り for every suggestion of the proposal that has no standing decision."""
    if not PublishForm().validate_on_submit():
        abort(400)
    db = get_session()
    proposal = db.get(Proposal, proposal_id)
    if proposal is None:
        abort(404)
    suggested = [s.program_id for s in suggestions_for_proposal(session=db, proposal_id=proposal_id)]
    try:
        change = commands.reject_rest(session=db, proposal=proposal, program_ids=suggested, actor=_actor(),
                                      expected_version=_version())
    except StaleDecision as exc:
        if wants_json():
            return stale_json(exc)
        flash(exc.message, "error")
        return redirect(url_for("review.proposal", proposal_id=proposal_id), 303)
    if wants_json():
        return change_json(change)
    flash(f"残りの候補 {len(change.decisions)}件を見送りにしました。", "info")
    return redirect(url_for("review.proposal", proposal_id=proposal_id), 303)


@bp.route("/review/next")
def next_proposal() -> Any:
    """The next 未判断 proposal after ``?after=ID`` (the queue's order), or the queue."""
    raw = request.args.get("after", "")
    after = int(raw) if raw.isdigit() and len(raw) < 10 else 2**31 - 1
    db = get_session()
    found = next_unreviewed(session=db, after_id=after, run_id=latest_run_id(session=db))
    if found is None:
        flash("未判断の提案はありません。", "info")
        return redirect(url_for("review.queue"), 303)
    return redirect(url_for("review.proposal", proposal_id=found), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
