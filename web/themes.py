"""Themes on the console: the dashboard's card (``_themes.html``), a theme's
page with its proposals, organisations and shared programs, its edits
(rename, split, join) and their undo, and a joint 協働事業 of its proposals; the joint
project on the proposal page and the NPO's status page (``_joint_project.html``).
Every route needs a login; views call the office commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from pydantic import ValidationError as ModelError
from sqlmodel import col, select
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from models.tables import Proposal
from models.theme_tables import THEME_LABEL_MAX, Theme
from models.themes import joint_project_of, project_proposals, theme_of, theme_summaries
from models.workflow import last_published, published_since
from models.workflow_tables import Project
from office import answers, theme_edits, themes
from office.theme_edits import ThemeEditError, UndoPlan
from web.auth import current_actor, require_login
from web.db import get_session
from web.forms import _no_control_characters, _strip
from web.workflow_forms import ProjectForm

bp = Blueprint("themes", __name__)
bp.before_request(require_login)
DASHBOARD_THEMES = 20  # themes of two proposals or more on the dashboard, most groups first
BAD_SELECTION = "提案の指定が正しくありません。"


class RenameForm(FlaskForm):
    label = StringField("テーマ名", filters=[_strip], validators=[
        DataRequired(message="テーマ名を入力してください。"),
        Length(max=THEME_LABEL_MAX, message=f"テーマ名は{THEME_LABEL_MAX}文字以内で入力してください。"),
        _no_control_characters])


class SplitForm(FlaskForm):
    new_label = StringField("新しいテーマ名（空欄なら自動）", filters=[_strip], validators=[
        Length(max=THEME_LABEL_MAX, message=f"テーマ名は{THEME_LABEL_MAX}文字以内で入力してください。"),
        _no_control_characters])


class JoinForm(FlaskForm):
    other = StringField("統合するテーマ", filters=[_strip], validators=[DataRequired(message="統合するテーマを選んでください。")])


def _theme_or_404(theme_id: int) -> Theme:
    theme = get_session().get(Theme, theme_id)
    if theme is None:
        abort(404)
    return theme


def _selected() -> list[int] | None:
    """The checked proposals (``proposal_id``, repeated); None when one is not a number."""
    raw = request.form.getlist("proposal_id")
    if any(not value.isdigit() or len(value) > 9 for value in raw):
        return None
    return sorted({int(value) for value in raw})


def _errors(form: Any) -> list[str]:
    return [m for messages in form.errors.values() for m in messages] or ["入力が正しくありません。"]


def _render(theme_id: int, status: int = 200, errors: list[str] | None = None, **forms: Any) -> Any:
    page = themes.theme_page(session=get_session(), theme_id=theme_id)
    if page is None:
        abort(404)
    project_form = forms.get("project_form") or ProjectForm(name=page.theme.label, formdata=None)
    plan = theme_edits.undo_plan(session=get_session(), theme=page.theme)
    return render_template(
        "theme.html", page=page, errors=errors or [], checked=set(forms.get("checked") or ()),
        rename_form=forms.get("rename_form") or RenameForm(label=page.theme.label, formdata=None),
        split_form=forms.get("split_form") or SplitForm(formdata=None),
        join_form=forms.get("join_form") or JoinForm(formdata=None), project_form=project_form,
        undo=plan, undo_text=undo_description(plan), undo_form=FlaskForm(formdata=None),
    ), status


@bp.route("/themes/<int:theme_id>")
def theme(theme_id: int) -> Any:
    """A theme: its open proposals and organisations, the programs and departments they share."""
    return _render(theme_id)


@bp.route("/themes/<int:theme_id>/rename", methods=["POST"])
def rename(theme_id: int) -> Any:
    found, form = _theme_or_404(theme_id), RenameForm()
    if not form.validate_on_submit():
        return _render(theme_id, 400, _errors(form), rename_form=form)
    try:
        theme_edits.rename_theme(session=get_session(), theme=found, label=form.label.data, actor=current_actor())
    except ThemeEditError as exc:
        get_session().rollback()
        return _render(theme_id, 400, [exc.message], rename_form=form)
    flash(f"テーマ名を「{found.label}」にしました。", "info")
    return redirect(url_for("themes.theme", theme_id=theme_id), 303)


@bp.route("/themes/<int:theme_id>/split", methods=["POST"])
def split(theme_id: int) -> Any:
    """Move the checked proposals into a new theme."""
    found, form, chosen = _theme_or_404(theme_id), SplitForm(), _selected()
    if chosen is None:
        return _render(theme_id, 400, [BAD_SELECTION])
    if not form.validate_on_submit():
        return _render(theme_id, 400, _errors(form), split_form=form, checked=chosen)
    try:
        other = theme_edits.split_theme(session=get_session(), theme=found, proposal_ids=chosen,
                                   label=form.new_label.data or "", actor=current_actor())
    except ThemeEditError as exc:
        get_session().rollback()
        return _render(theme_id, 400, [exc.message], split_form=form, checked=chosen)
    flash(f"{len(chosen)}件の提案を新しいテーマ「{other.label}」に分けました。", "info")
    return redirect(url_for("themes.theme", theme_id=other.id), 303)


@bp.route("/themes/<int:theme_id>/join", methods=["POST"])
def join(theme_id: int) -> Any:
    """Merge another theme into this one."""
    found, form = _theme_or_404(theme_id), JoinForm()
    if not form.validate_on_submit():
        return _render(theme_id, 400, _errors(form), join_form=form)
    raw = form.other.data or ""
    other = get_session().get(Theme, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    if other is None:
        return _render(theme_id, 400, ["統合するテーマが見つかりません。"], join_form=form)
    try:
        theme_edits.join_themes(session=get_session(), theme=found, other=other, actor=current_actor())
    except ThemeEditError as exc:
        get_session().rollback()
        return _render(theme_id, 400, [exc.message], join_form=form)
    flash("テーマを統合しました。", "info")
    return redirect(url_for("themes.theme", theme_id=theme_id), 303)


@bp.route("/themes/<int:theme_id>/undo", methods=["POST"])
def undo(theme_id: int) -> Any:
    """Undo the theme's newest edit (the stack of office.theme_edits)."""
    found = _theme_or_404(theme_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    raw = request.form.get("event_id", "")
    expected = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
    try:
        shown = theme_edits.undo_theme_edit(session=get_session(), theme=found, actor=current_actor(),
                                            expected_event_id=expected)
    except ThemeEditError as exc:
        get_session().rollback()
        return _render(theme_id, 409, [exc.message])
    flash("テーマの編集を一つ取り消しました。", "info")
    return redirect(url_for("themes.theme", theme_id=shown.id), 303)


def undo_description(plan: UndoPlan) -> str:
    """What the undo button steps back, in Japanese (the template's text)."""
    event = plan.event
    if event is None:
        return ""
    d = event.detail or {}
    if event.action == "theme.rename":
        return f"テーマ名の変更（「{d.get('from', '')}」→「{d.get('to', '')}」）"
    if event.action == "theme.split":
        return f"テーマの分割（{len(d.get('proposal_ids') or [])}件を「{d.get('label', '')}」に分けたこと）"
    return f"テーマの統合（「{d.get('joined_label', '')}」をこのテーマに統合したこと）"


@bp.route("/themes/<int:theme_id>/project", methods=["POST"])
def project(theme_id: int) -> Any:
    """A joint 協働事業 of the checked proposals (two or more)."""
    _theme_or_404(theme_id)
    form, chosen = ProjectForm(), _selected()
    if chosen is None:
        return _render(theme_id, 400, [BAD_SELECTION], project_form=form)
    if not form.validate_on_submit():
        return _render(theme_id, 400, _errors(form), project_form=form, checked=chosen)
    db = get_session()
    proposals = list(db.exec(select(Proposal).where(col(Proposal.id).in_(chosen)))) if chosen else []
    if len(proposals) != len(chosen):
        return _render(theme_id, 400, [BAD_SELECTION], project_form=form, checked=chosen)
    try:
        made = answers.propose_joint_project(session=db, proposals=proposals, project_in=form.to_model(),
                                             actor=current_actor())
    except answers.JointProjectError as exc:
        db.rollback()
        return _render(theme_id, 400, [exc.message], project_form=form, checked=chosen)
    except ModelError:
        db.rollback()
        return _render(theme_id, 400, ["協働事業の入力が正しくありません。"], project_form=form, checked=chosen)
    flash(f"{len(proposals)}件の提案による協働事業「{made.name}」を記録しました。", "info")
    return redirect(url_for("review.proposal", proposal_id=made.proposal_id, _anchor="joint-project-h"), 303)


# -- what the includes read ------------------------------------------------------------


def theme_overview() -> dict[str, Any]:
    """The dashboard's card: themes of two open proposals or more, most groups first."""
    summaries = theme_summaries(session=get_session())
    shared = [s for s in summaries if len(s.proposals) > 1]
    return {"themes": shared[:DASHBOARD_THEMES], "more": max(0, len(shared) - DASHBOARD_THEMES),
            "alone": len(summaries) - len(shared)}


@dataclass
class JointView:
    project: Project
    proposals: list[Proposal]
    shown: bool  # on the NPO's page: once an answer to its proposal is published after it was linked


def joint_project_view(proposal_id: int) -> JointView | None:
    db = get_session()
    found = joint_project_of(session=db, proposal_id=proposal_id)
    if found is None:
        return None
    joint, link = found
    assert joint.id is not None
    shown = published_since(last_published(session=db, proposal_id=proposal_id), link.created_at)
    return JointView(project=joint, proposals=project_proposals(session=db, project_id=joint.id), shown=shown)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["theme_overview"] = theme_overview
    app.jinja_env.globals["joint_project_view"] = joint_project_view
    app.jinja_env.globals["theme_of_proposal"] = lambda proposal_id: theme_of(session=get_session(), proposal_id=proposal_id)
