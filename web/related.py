"""Related and duplicate proposals in the console: the proposal page's panel
(web/templates/_related.html, through the ``related_panel`` template
function), the queue's 重複の可能性 badge, the status page's note of a
merged proposal, and the coordinator's POSTs: 統合する, 統合を取り消す,
重複ではない and its 取り消し. Views call ``office.merging``; every route needs
a login."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, request, url_for
from flask_wtf import FlaskForm

from models.related import (
    RelatedItem,
    duplicates_of,
    merged_from,
    not_duplicate_others,
    proposals_by_id,
    related_for,
)
from models.tables import Proposal
from office.commands import StaleDecision
from office.merging import (
    MergeRefused,
    mark_not_duplicate,
    merge_proposals,
    unmerge,
    withdraw_not_duplicate,
)
from web.auth import current_actor, require_login
from web.db import get_session

bp = Blueprint("related", __name__)
bp.before_request(require_login)

MAX_ID = 2**31 - 1  # larger ids cannot exist (and overflow PostgreSQL's integer)


class PlainForm(FlaskForm):
    """A POST with its CSRF token only; the ids come as plain fields."""


@dataclass
class RelatedPanel:
    """What the proposal page shows of related and duplicate proposals."""

    items: list[RelatedItem] = field(default_factory=list)
    duplicates: list[Proposal] = field(default_factory=list)
    merged_into: Proposal | None = None
    merged_from: list[Proposal] = field(default_factory=list)
    not_duplicates: list[Proposal] = field(default_factory=list)  # marked 重複ではない with this one


def related_panel(proposal: Proposal) -> RelatedPanel:
    """The panel of one proposal (the template function of _related.html)."""
    db = get_session()
    assert proposal.id is not None
    duplicate_ids = duplicates_of(session=db, proposal_ids=[proposal.id])[proposal.id]
    marked = not_duplicate_others(session=db, proposal_id=proposal.id)
    wanted = set(duplicate_ids) | set(marked) | ({proposal.merged_into_id} if proposal.merged_into_id else set())
    found = proposals_by_id(session=db, ids=wanted)
    return RelatedPanel(
        items=related_for(session=db, proposal_id=proposal.id),
        duplicates=[found[i] for i in sorted(duplicate_ids) if i in found],
        merged_into=found.get(proposal.merged_into_id) if proposal.merged_into_id else None,
        merged_from=merged_from(session=db, proposal_id=proposal.id),
        not_duplicates=[found[i] for i in marked if i in found],
    )


def merged_receipt(proposal: Proposal) -> str | None:
    """The receipt number of the proposal this one was merged into (the NPO's
    status page says where it went), None when it was not merged."""
    if proposal.merged_into_id is None:
        return None
    kept = get_session().get(Proposal, proposal.merged_into_id)
    return (kept.receipt_number or str(kept.id)) if kept is not None else None


def _proposal_or_404(proposal_id: int) -> Proposal:
    proposal = get_session().get(Proposal, proposal_id) if proposal_id <= MAX_ID else None
    if proposal is None:
        abort(404)
    return proposal


def _id_field(name: str) -> int | None:
    raw = (request.form.get(name) or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def _version() -> int | None:
    raw = request.form.get("version", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def _back(proposal_id: int) -> Any:
    return redirect(url_for("review.proposal", proposal_id=proposal_id)), 303


def _other(name: str) -> Proposal | None:
    other_id = _id_field(name)
    return get_session().get(Proposal, other_id) if other_id is not None else None


def _posted_pair(proposal_id: int, name: str, missing: str) -> tuple[Proposal, Proposal | None]:
    """The proposal of the URL and the other one of the form's ``name``
    (None, with ``missing`` flashed, when there is none); 400 without a valid form."""
    proposal = _proposal_or_404(proposal_id)
    if not PlainForm().validate_on_submit():
        abort(400)
    other = _other(name)
    if other is None:
        flash(missing, "error")
    return proposal, other


@bp.route("/review/proposals/<int:proposal_id>/merge", methods=["POST"])
def merge(proposal_id: int):  # type: ignore[no-untyped-def]
    """統合する: this proposal into the one of ``into_id``."""
    proposal, into = _posted_pair(proposal_id, "into_id", "統合先の提案が見つかりません。")
    if into is None:
        return _back(proposal_id)
    try:
        merge_proposals(session=get_session(), proposal=proposal, into=into, actor=current_actor(),
                        expected_version=_version())
    except (MergeRefused, StaleDecision) as exc:
        flash(exc.message, "error")
        return _back(proposal_id)
    flash(f"この提案を受付番号 {into.receipt_number or into.id} の提案に統合しました（提案者にメールでお知らせします）。", "info")
    return _back(proposal_id)


@bp.route("/review/proposals/<int:proposal_id>/unmerge", methods=["POST"])
def unmerge_view(proposal_id: int):  # type: ignore[no-untyped-def]
    """統合を取り消す: the proposal is on its own again, at the stage it had."""
    proposal = _proposal_or_404(proposal_id)
    if not PlainForm().validate_on_submit():
        abort(400)
    try:
        unmerge(session=get_session(), proposal=proposal, actor=current_actor(), expected_version=_version())
    except (MergeRefused, StaleDecision) as exc:
        flash(exc.message, "error")
        return _back(proposal_id)
    flash("統合を取り消しました。", "info")
    return _back(proposal_id)


@bp.route("/review/proposals/<int:proposal_id>/not-duplicate", methods=["POST"])
def not_duplicate(proposal_id: int):  # type: ignore[no-untyped-def]
    """重複ではない: the pair's flag stays off, across rematches too."""
    proposal, other = _posted_pair(proposal_id, "other_id", "相手の提案が見つかりません。")
    if other is None:
        return _back(proposal_id)
    try:
        marked = mark_not_duplicate(session=get_session(), proposal=proposal, other=other, actor=current_actor())
    except MergeRefused as exc:
        flash(exc.message, "error")
        return _back(proposal_id)
    flash("重複ではないと記録しました。" if marked else "この組は、すでに重複ではないと記録されています。", "info")
    return _back(proposal_id)


@bp.route("/review/proposals/<int:proposal_id>/not-duplicate/undo", methods=["POST"])
def undo_not_duplicate(proposal_id: int):  # type: ignore[no-untyped-def]
    """重複ではないの取り消し: the pair is flagged again if the run still finds it alike."""
    proposal, other = _posted_pair(proposal_id, "other_id", "相手の提案が見つかりません。")
    if other is None:
        return _back(proposal_id)
    withdrawn = withdraw_not_duplicate(session=get_session(), proposal=proposal, other=other, actor=current_actor())
    flash("「重複ではない」の記録を取り消しました。" if withdrawn else "この組に「重複ではない」の記録はありません。", "info")
    return _back(proposal_id)


def init_app(app: Flask) -> None:
    app.add_template_global(related_panel)
    app.add_template_global(merged_receipt)
    app.add_template_global(PlainForm, "related_form")
    app.register_blueprint(bp)
