"""The catalogue: search, a page per program and per department (担当課),
each listing the proposals matched to it and the decisions taken. Login required."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from models.programs import set_keywords
from models.review import department_programs, departments, pairs_for_programs, search_programs
from models.tables import Program
from web.auth import login_manager
from web.db import get_session
from web.forms import KeywordsForm

bp = Blueprint("programs", __name__)


@bp.before_request
def _require_login() -> Any:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1


@bp.route("/programs")
def catalogue():  # type: ignore[no-untyped-def]
    """Every program, searchable by text or department."""
    db = get_session()
    q = (request.args.get("q") or "").strip()[:100]
    page = search_programs(session=db, q=q, page=_page_number(), page_size=current_app.config["PAGE_SIZE"])
    return render_template(
        "programs.html", page=page, q=q, departments=departments(session=db),
        page_url=lambda n: url_for("programs.catalogue", page=n, q=q),
    )


@bp.route("/programs/<int:program_id>", methods=["GET", "POST"])
def program(program_id: int):  # type: ignore[no-untyped-def]
    """One program, its keywords (editable) and the proposals matched or paired with it."""
    db = get_session()
    found = db.get(Program, program_id)
    if found is None:
        abort(404)
    form = KeywordsForm(data={"keywords": found.keywords})
    if request.method == "POST":
        form = KeywordsForm()
        if form.validate_on_submit():
            changed = set_keywords(
                session=db, program=found, keywords=form.keywords.data or "", actor=current_user.username
            )
            flash(
                "キーワードを保存しました。次の再マッチング（夜間の一括処理）から提案の照合に使われます。"
                if changed else "キーワードは変わっていません。",
                "info",
            )
            return redirect(url_for("programs.program", program_id=program_id))
        flash("キーワードを保存できませんでした。入力欄の説明を確認してください。", "error")
    status = 400 if form.errors else 200
    pairs = pairs_for_programs(session=db, program_ids=[program_id])
    return render_template("program.html", program=found, pairs=pairs, form=form), status


@bp.route("/departments/<path:name>")
def department(name: str):  # type: ignore[no-untyped-def]
    """One department's programs and the proposals matched to them: one link to send."""
    db = get_session()
    programs = department_programs(session=db, department=name)
    if not programs:
        abort(404)
    ids = [p.id for p in programs if p.id is not None]
    return render_template(
        "department.html", name=name, programs=programs, pairs=pairs_for_programs(session=db, program_ids=ids)
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
