"""The coordinator console: dashboard, review queue, proposal page with its
decisions, export and audit trail. Every route needs a login."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from models.clock import JST, utcnow
from models.dashboard import audit_actions, audit_page
from models.dashboard import dashboard as dashboard_counts
from models.export import CSV_COLUMNS, PairingRow, excel_csv, excel_xlsx, pairing_rows, pairings_csv
from models.labels import LABELS, Stage
from models.outbox import counts_by_status, failed_messages
from models.queue import CONFIDENCES, SORTS, QueueFilters, review_queue
from models.related import duplicates_of
from models.review import departments, program_by_reference, proposal_view
from models.tables import Proposal
from models.workflow import drafts_for, overdue_requests, plan_progress, workflow_view
from models.workflow_export import PROPOSAL_COLUMNS, proposal_rows
from office import commands
from office.answers import PROJECT_STAGES
from office.commands import StaleDecision
from office.duties import department_candidates
from office.search import find_programs
from web.audit_text import names_for, sentence
from web.auth import current_actor, require_login
from web.db import get_matching, get_session
from web.downloads import download
from web.forms import VERDICTS, DecisionForm, PairForm, StageForm, UndoForm

bp = Blueprint("review", __name__)


bp.before_request(require_login)


_actor = current_actor


def parse_filters(args: Any) -> tuple[QueueFilters, list[str]]:
    """The queue's filters from the query string, and a message per bad value."""
    errors: list[str] = []

    low, high = get_matching().comparable_scale

    def score(name: str, label: str) -> float | None:
        raw = (args.get(name) or "").strip()
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            errors.append(f"{label}は{low:g}から{high:g}の数で指定してください。")
            return None
        return value

    stage = args.get("stage") or None
    if stage and stage not in Stage._value2member_map_:
        errors.append("段階の指定が正しくありません。")
        stage = None
    sort = args.get("sort") or "newest"
    if sort not in SORTS:
        errors.append("並び順の指定が正しくありません。")
        sort = "newest"
    reviewed = {"yes": True, "no": False}.get(args.get("reviewed", ""))
    confidence = args.get("confidence") or None
    if confidence and confidence not in CONFIDENCES:
        errors.append("確からしさの指定が正しくありません。")
        confidence = None
    filters = QueueFilters(
        stage=stage,
        department=(args.get("department") or "").strip()[:100] or None,
        min_score=score("min_score", "最低スコア"),
        max_score=score("max_score", "最高スコア"),
        new_only=args.get("new") == "1",
        reviewed=reviewed,
        q=(args.get("q") or "").strip()[:100] or None,
        received_from=_date_arg(args, "received_from", "受付日（から）", errors),
        received_to=_date_arg(args, "received_to", "受付日（まで）", errors),
        sort=sort,
        confidence=confidence,
    )
    return filters, errors


def _date_arg(args: Any, name: str, label: str, errors: list[str]) -> date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(f"{label}は 2026-04-01 の形の日付で指定してください。")
        return None


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1


@bp.route("/dashboard")
def dashboard():  # type: ignore[no-untyped-def]
    """Proposals by status, awaiting review, the last rematch, progress to the target."""
    db = get_session()
    counts = dashboard_counts(session=db)
    return render_template(
        "dashboard.html", d=counts, target=current_app.config["TARGET_NEW_PROJECTS"],
        plan=plan_progress(session=db, start=current_app.config["PLAN_START"], end=current_app.config["PLAN_END"]),
        overdue=overdue_requests(session=db, today=utcnow().astimezone(JST).date()),
        failed_mail=failed_messages(session=db), mail_counts=counts_by_status(session=db),
        stages=[(s.value, LABELS[s]) for s in Stage],
    )


@bp.route("/review")
def queue():  # type: ignore[no-untyped-def]
    """The review queue: filters, sorting, pagination."""
    filters, errors = parse_filters(request.args)
    db = get_session()
    result = review_queue(
        session=db, filters=filters, page=_page_number(), page_size=current_app.config["PAGE_SIZE"]
    )
    args = {k: v for k, v in request.args.items() if k != "page"}
    ids = [row.proposal.id for row in result.page.rows]
    return render_template(
        "queue.html",
        result=result,
        page=result.page,
        filters=filters,
        errors=errors,
        departments=departments(session=db),
        stages=[(s.value, LABELS[s]) for s in Stage],
        drafts=drafts_for(session=db, proposal_ids=ids),
        duplicates={pid for pid, others in duplicates_of(session=db, proposal_ids=ids).items() if others},
        page_url=lambda n: url_for("review.queue", page=n, **args),
    ), (400 if errors else 200)


def _proposal_or_404(proposal_id: int) -> Proposal:
    proposal = get_session().get(Proposal, proposal_id)
    if proposal is None:
        abort(404)
    return proposal


@bp.route("/review/proposals/<int:proposal_id>")
def proposal(proposal_id: int):  # type: ignore[no-untyped-def]
    """The proposal, its suggestions with highlighted shared terms, decisions and history."""
    return _render_proposal(proposal_id)


def _render_proposal(proposal_id: int, status: int = 200, pair_form: PairForm | None = None,
                     **forms: Any) -> Any:
    """The proposal page; a form given (with its errors) replaces the empty one."""
    from web.workflow import opinion_url, request_form
    from web.workflow_forms import AnswerForm, ProjectForm, PublishForm

    db = get_session()
    view = proposal_view(session=db, proposal_id=proposal_id)
    if view is None:
        abort(404)
    flow = workflow_view(session=db, proposal_id=proposal_id)
    pick = (request.args.get("pick") or "").strip()[:100]
    picked = find_programs(session=db, q=pick, active_only=False, page_size=20) if pick else None
    draft = flow.draft
    answer_form = forms.get("answer_form") or AnswerForm(
        stage=draft.stage if draft else view.proposal.stage, text=draft.text if draft else "")
    project_form = forms.get("project_form") or ProjectForm(obj=flow.project, name=(
        flow.project.name if flow.project else view.proposal.title))
    return render_template(
        "proposal.html", view=view, p=view.proposal, flow=flow, verdicts=VERDICTS, pick=pick, picked=picked,
        pair_form=pair_form or PairForm(), undo_form=UndoForm(),
        stage_form=StageForm(stage=view.proposal.stage), decision_form=DecisionForm(),
        request_form=forms.get("request_form") or request_form(), answer_form=answer_form,
        project_form=project_form, plain_form=PublishForm(), opinion_url=opinion_url,
        project_stages=PROJECT_STAGES,
        candidates=department_candidates(session=db, proposal_id=proposal_id, matching=get_matching()),
    ), status


@bp.route("/review/proposals/<int:proposal_id>/decisions", methods=["POST"])
def decide_view(proposal_id: int):  # type: ignore[no-untyped-def]
    """採用 / 見送り / 保留 of one pair, with an optional note."""
    proposal = _proposal_or_404(proposal_id)
    form = DecisionForm()
    if not form.validate_on_submit() or not form.program_id.data.isdigit():
        flash("判断を記録できませんでした：" + " ".join(_errors(form)), "error")
        return redirect(url_for("review.proposal", proposal_id=proposal_id)), 303
    from web.deciding import change_json, stale_json, wants_json

    try:
        change = commands.decide(
            session=get_session(), proposal=proposal, program_id=int(form.program_id.data),
            verdict=form.verdict.data, note=form.note.data or "", actor=_actor(), expected_version=_version(),
        )
    except LookupError:
        abort(404)
    except StaleDecision as exc:
        return stale_json(exc) if wants_json() else _stale(proposal_id, exc)
    if wants_json():
        return change_json(change)
    flash(f"「{VERDICTS[form.verdict.data]}」を記録しました。", "info")
    return redirect(url_for("review.proposal", proposal_id=proposal_id)), 303


def program_id_of(reference: str) -> int:
    """The program a hand pairing names (its number or the catalogue's id); -1 if none."""
    found = program_by_reference(session=get_session(), reference=reference)
    return found.id if found is not None and found.id is not None else -1


def _version() -> int | None:
    """The decision version the form was made on (None from a client that sends none)."""
    raw = request.form.get("version", "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _stale(proposal_id: int, exc: StaleDecision) -> Any:
    """Another coordinator decided first: say so and show the current state (409)."""
    flash(exc.message, "error")
    return _render_proposal(proposal_id, 409)


def _errors(form: Any) -> list[str]:
    return [message for messages in form.errors.values() for message in messages] or ["入力が正しくありません。"]


@bp.route("/review/proposals/<int:proposal_id>/pair", methods=["POST"])
def pair(proposal_id: int):  # type: ignore[no-untyped-def]
    """Pair by hand with any program of the catalogue (recorded as 採用)."""
    proposal = _proposal_or_404(proposal_id)
    form = PairForm()
    if not form.validate_on_submit():
        return _render_proposal(proposal_id, 400, form)
    raw = form.program_id.data
    try:
        commands.pair(
            session=get_session(), proposal=proposal, program_id=program_id_of(raw),
            note=form.note.data or "", actor=_actor(), expected_version=_version(),
        )
    except StaleDecision as exc:
        return _stale(proposal_id, exc)
    except LookupError:
        form.program_id.errors = ["その事業IDの事業はありません。"]
        return _render_proposal(proposal_id, 400, form)
    flash("事業と手動で組み合わせました（採用）。", "info")
    return redirect(url_for("review.proposal", proposal_id=proposal_id)), 303


@bp.route("/review/proposals/<int:proposal_id>/undo", methods=["POST"])
def undo(proposal_id: int):  # type: ignore[no-untyped-def]
    """Undo the last decision on this proposal (a new row; nothing is deleted)."""
    proposal = _proposal_or_404(proposal_id)
    if not UndoForm().validate_on_submit():
        abort(400)
    try:
        undone = commands.undo(session=get_session(), proposal=proposal, actor=_actor(), expected_version=_version())
    except StaleDecision as exc:
        return _stale(proposal_id, exc)
    flash(f"決定 #{undone.event.entity_id if undone and undone.event else ''} を取り消しました。" if undone
          else "取り消す判断がありません。", "info")
    return redirect(url_for("review.proposal", proposal_id=proposal_id)), 303


@bp.route("/review/proposals/<int:proposal_id>/stage", methods=["POST"])
def change_stage(proposal_id: int):  # type: ignore[no-untyped-def]
    """Set the office's stage of the proposal (the NPO sees it once an answer is published)."""
    proposal = _proposal_or_404(proposal_id)
    form = StageForm()
    if not form.validate_on_submit():
        flash("段階を変更できませんでした。", "error")
        return redirect(url_for("review.proposal", proposal_id=proposal_id)), 303
    change = commands.set_stage(session=get_session(), proposal=proposal, stage=form.stage.data, actor=_actor())
    label = LABELS[Stage(change.stage_to)]
    flash(f"段階を「{label}」にしました（提案者には回答を公開するまで表示されません）。" if change.stage_changed
          else f"段階は「{label}」のままです。", "info")
    return redirect(url_for("review.proposal", proposal_id=proposal_id)), 303


def _pairings() -> list[PairingRow]:
    """Each pair's current decision; ``?history=1`` for every decision ever made."""
    return pairing_rows(session=get_session(), current_only=request.args.get("history") != "1")


@bp.route("/export/pairings.csv")
def export_csv():  # type: ignore[no-untyped-def]
    """Pairings and decisions as CSV, UTF-8 with BOM for Excel."""
    name = "判断の履歴" if request.args.get("history") == "1" else "組み合わせと判断"
    return download(pairings_csv(_pairings()), name=f"{name}.csv", fallback="pairings.csv")


@bp.route("/export/pairings.xlsx")
def export_xlsx():  # type: ignore[no-untyped-def]
    """The same rows as an Excel workbook."""
    name = "判断の履歴" if request.args.get("history") == "1" else "組み合わせと判断"
    content = excel_xlsx(CSV_COLUMNS, _pairings(), sheet_name=name)
    return download(content, name=f"{name}.xlsx", fallback="pairings.xlsx")


@bp.route("/export/pairings.json")
def export_json():  # type: ignore[no-untyped-def]
    """The same rows as JSON."""
    return jsonify(pairings=[row.to_dict() for row in _pairings()])


@bp.route("/export/proposals.csv")
def export_proposals_csv():  # type: ignore[no-untyped-def]
    """Every proposal with its stage (code and label), published stage, 所見 and 協働事業, for Excel."""
    content = excel_csv(PROPOSAL_COLUMNS, proposal_rows(session=get_session()))
    return download(content, name="提案一覧.csv", fallback="proposals.csv")


@bp.route("/export/proposals.xlsx")
def export_proposals_xlsx():  # type: ignore[no-untyped-def]
    content = excel_xlsx(PROPOSAL_COLUMNS, proposal_rows(session=get_session()), sheet_name="提案一覧")
    return download(content, name="提案一覧.xlsx", fallback="proposals.xlsx")


@bp.route("/export/proposals.json")
def export_proposals_json():  # type: ignore[no-untyped-def]
    """The same rows as JSON (stage codes: received … withdrawn)."""
    return jsonify(proposals=[row.to_dict() for row in proposal_rows(session=get_session())])


@bp.route("/audit")
def audit():  # type: ignore[no-untyped-def]
    """Who decided or imported what, and when."""
    db = get_session()
    action = (request.args.get("action") or "").strip() or None
    page = audit_page(session=db, action=action, page=_page_number())
    names = names_for(session=db, events=page.rows)
    return render_template(
        "audit.html", page=page, action=action, actions=audit_actions(session=db),
        sentence=lambda event: sentence(event, names),
        page_url=lambda n: url_for("review.audit", page=n, **({"action": action} if action else {})),
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
