"""The departments (担当課) as the office keeps them: the list with its upload
(the ``kyodo departments import`` of the command line), the export, and an
edit form per department. Login required.

A department's own page (its programs and the proposals matched to them, a
page of each at a time) is :func:`department_page`, served as the
``programs.department`` endpoint that other pages link to.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from corpus import FileFormatError, InvalidRowsError
from models.department_page import department_pairs_page, department_programs_page
from models.departments import department_rows, export_csv, load_departments
from models.workflow import all_departments, department_by_name
from office.departments import import_departments, update_department
from web.auth import current_actor, require_login
from web.db import get_session
from web.department_forms import DepartmentForm, DepartmentsImportForm
from web.uploads import read_limits

bp = Blueprint("departments", __name__)
bp.before_request(require_login)


_actor = current_actor


def _listing(form: DepartmentsImportForm, problems: list[str], status: int = 200) -> tuple[str, int]:
    page = render_template("departments.html", rows=department_rows(session=get_session()), form=form, problems=problems)
    return page, status


@bp.route("/departments")
def index():  # type: ignore[no-untyped-def]
    """Every department: 部, e-mail (or 未登録), 有効, its number of programs, and the upload."""
    return _listing(DepartmentsImportForm(), [])


@bp.route("/departments/import", methods=["POST"])
def upload():  # type: ignore[no-untyped-def]
    """Import the departments from a spreadsheet, all or nothing, each bad line named."""
    form = DepartmentsImportForm()
    if not form.validate_on_submit():
        return _listing(form, [], 400)
    upload = form.file.data
    name = (upload.filename or "departments")[:200]
    with tempfile.TemporaryDirectory(prefix="kyodo-upload-") as folder:
        path = Path(folder) / f"upload{Path(upload.filename or '').suffix.lower()}"
        upload.save(path)
        try:
            records = load_departments(path, read_limits())
        except InvalidRowsError as exc:
            form.file.errors = [f"{len(exc.errors)}件の問題があるため、何も取り込んでいません。直してからもう一度送ってください。"]
            problems = [f"{e.line}行目：{e.ja}" if e.line else e.ja for e in exc.errors]
            return _listing(form, problems, 400)
        except FileFormatError as exc:
            form.file.errors = [f"読み込めませんでした：{exc.ja}。"]
            return _listing(form, [], 400)
    report = import_departments(session=get_session(), records=records, source_file=name, actor=_actor())
    flash(
        f"{name}：担当課を取り込みました：追加 {report.added}件、更新 {report.updated}件、変更なし {report.unchanged}件。",
        "info",
    )
    return redirect(url_for("departments.index"))


@bp.route("/departments/export.csv")
def export():  # type: ignore[no-untyped-def]
    """Every department, as ``kyodo departments export``: UTF-8 with BOM for
    Excel; edited and uploaded again, it imports back."""
    return Response(
        "\ufeff" + export_csv(all_departments(session=get_session())),
        headers={"Content-Disposition": "attachment; filename=departments.csv"},
        content_type="text/csv; charset=utf-8",
    )


@bp.route("/departments/<name>/edit", methods=["GET", "POST"])
def edit(name: str):  # type: ignore[no-untyped-def]
    """One department's 部, メールアドレス, 所掌事務 and 有効; its name is the
    programs' 担当課 and is not edited here."""
    db = get_session()
    department = department_by_name(session=db, name=name)
    if department is None:
        abort(404)
    form = DepartmentForm(obj=department)
    if form.validate_on_submit():
        changed = update_department(session=db, department=department, data=form.department_data(name), actor=_actor())
        flash(f"担当課「{name}」を保存しました。" if changed else "変更はありませんでした。", "info")
        return redirect(url_for("programs.department", name=name))
    if form.errors:
        flash("保存できませんでした。入力欄の説明を確認してください。", "error")
    status = 400 if form.errors else 200
    return render_template("departments_edit.html", department=department, form=form), status


def _page_number(name: str) -> int:
    raw = request.args.get(name, "1")
    return int(raw) if raw.isdecimal() and raw.isascii() and 0 < len(raw) < 7 else 1


def department_page(name: str) -> Any:
    """One department (its 部, e-mail and 所掌事務, when it is a record), a page
    of its programs (``?page=``) and a page of the proposals matched or paired
    with them (``?pairs=``): one link to send."""
    db = get_session()
    size = current_app.config["PAGE_SIZE"]
    programs = department_programs_page(session=db, department=name, page=_page_number("page"), page_size=size)
    record = department_by_name(session=db, name=name)
    if programs.total == 0 and record is None:
        abort(404)
    pairs = department_pairs_page(session=db, department=name, page=_page_number("pairs"), page_size=size)
    return render_template(
        "department.html", name=name, record=record, programs=programs, pairs_page=pairs, pairs=pairs.rows,
        programs_url=lambda n: url_for("programs.department", name=name, page=n, pairs=pairs.number),
        pairs_url=lambda n: url_for("programs.department", name=name, page=programs.number, pairs=n),
    )


def init_app(app: Flask) -> None:
    """Register the department routes."""
    app.register_blueprint(bp)
