"""The catalogue: search, a page per program and per department (担当課),
each listing the proposals matched to it and the decisions taken. Login required."""

from __future__ import annotations

import tempfile
from pathlib import Path

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

from corpus import FileFormatError, InvalidRowsError, load_keywords, load_programs_report
from corpus.programs import fiscal_year_label
from models.clock import fiscal_year as fiscal_year_of
from models.clock import utcnow
from models.programs import UnknownProgramIds, export_csv, list_programs
from models.review import (
    department_programs,
    departments,
    pairs_for_programs,
    programs_without_keywords,
)
from models.tables import Program
from models.workflow import department_by_name
from office.catalogue import import_catalogue, import_program_keywords, set_program_keywords
from office.search import find_programs
from web.auth import current_actor, require_login
from web.db import get_session
from web.forms import KeywordsForm, ProgramsImportForm
from web.jobs import QueueError, request_rematch

bp = Blueprint("programs", __name__)


bp.before_request(require_login)


_actor = current_actor


def _queue_rematch(reason: str) -> str:
    """Queue the rematch that makes a catalogue or keyword change count (one
    for several changes, web.jobs.request_rematch) and say so."""
    try:
        request_rematch(current_app._get_current_object(), reason)  # type: ignore[attr-defined]
    except QueueError:
        current_app.logger.exception("jobs: the rematch after %s could not be queued", reason)
        return "再マッチを予約できませんでした（ジョブキューに接続できません）。管理者に連絡してください。"
    return "再マッチを予約しました（数分で候補に反映されます）。"


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1


@bp.route("/programs")
def catalogue():  # type: ignore[no-untyped-def]
    """Every program, searchable by text or department."""
    db = get_session()
    q = (request.args.get("q") or "").strip()[:100]
    page = find_programs(session=db, q=q, page=_page_number(), page_size=current_app.config["PAGE_SIZE"])
    return render_template(
        "programs.html", page=page, q=q, departments=departments(session=db),
        without_keywords=programs_without_keywords(session=db),
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
            changed = set_program_keywords(
                session=db, program=found, keywords=form.keywords.data or "", actor=_actor()
            )
            flash(
                "キーワードを保存しました。" + _queue_rematch(f"keywords of program {program_id}")
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
    """One department (its 部, e-mail and 所掌事務, when it is a record), its
    programs and the proposals matched to them: one link to send."""
    db = get_session()
    programs = department_programs(session=db, department=name)
    record = department_by_name(session=db, name=name)
    if not programs and record is None:
        abort(404)
    ids = [p.id for p in programs if p.id is not None]
    return render_template(
        "department.html", name=name, record=record, programs=programs,
        pairs=pairs_for_programs(session=db, program_ids=ids),
    )


@bp.route("/programs/export.csv")
def export():  # type: ignore[no-untyped-def]
    """The catalogue with the keywords, as ``kyodo programs export``: UTF-8 with
    BOM for Excel; edited and uploaded again, it imports back."""
    return Response(
        "\ufeff" + export_csv(list_programs(session=get_session())),
        headers={"Content-Disposition": "attachment; filename=programs.csv"},
        content_type="text/csv; charset=utf-8",
    )


@bp.route("/programs/import", methods=["GET", "POST"])
def upload():  # type: ignore[no-untyped-def]
    """Import the city's program list (or the coordinator's keywords) from the
    spreadsheet it already has: the ``kyodo programs import`` / ``keywords``
    of the command line, all or nothing, each bad line named."""
    form = ProgramsImportForm()
    if not form.validate_on_submit():
        status = 400 if form.errors else 200
        return render_template("programs_import.html", form=form, problems=[]), status
    upload = form.file.data
    suffix = Path(upload.filename or "").suffix.lower()
    with tempfile.TemporaryDirectory(prefix="kyodo-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        upload.save(path)
        try:
            if form.kind.data == "keywords":
                message = _import_keywords(path, form.year)
            else:
                message = _import_catalogue(path, form.year, (upload.filename or path.name)[:200])
        except _Rejected as rejected:
            form.file.errors = [rejected.summary]
            return render_template("programs_import.html", form=form, problems=rejected.problems), 400
    flash(f"{upload.filename}：{message}", "info")
    return redirect(url_for("programs.catalogue"))


class _Rejected(Exception):
    """A file that imports nothing: a summary beside the field and each problem listed."""

    def __init__(self, summary: str, problems: list[str] | None = None):
        super().__init__(summary)
        self.summary = summary
        self.problems = problems or []


def _problems(errors: list[FileFormatError]) -> list[str]:
    return [f"{e.line}行目：{e.ja}" if e.line else e.ja for e in errors]


def _import_catalogue(path: Path, fiscal_year: int | None, source_file: str) -> str:
    current = fiscal_year_of(utcnow())
    try:
        result = load_programs_report(path, fiscal_year=fiscal_year, default_fiscal_year=current)
    except FileFormatError as exc:
        raise _Rejected(f"読み込めませんでした：{exc.ja}。") from exc
    errors = list(result.errors)
    if errors:
        raise _Rejected(f"{len(errors)}件の問題があるため、何も取り込んでいません。直してからもう一度送ってください。", _problems(errors))
    if not result.programs:
        raise _Rejected("事業が1件もありません。")
    report = import_catalogue(session=get_session(), records=result.programs, source_file=source_file, actor=_actor())
    years = "・".join(str(y) for y in report.fiscal_years)
    text = f"事業一覧を取り込みました（{years}年度）：追加 {report.added}件、更新 {report.updated}件、変更なし {report.unchanged}件"
    if result.defaulted:
        text += f"。年度の列がない行は{fiscal_year_label(current)}として取り込みました"
    if report.deactivated:
        text += f"。前年度までの {report.deactivated}件は過年度になりました"
    text += "。"
    if report.added or report.updated or report.deactivated:
        text += _queue_rematch(f"catalogue {source_file}")
    return text


def _import_keywords(path: Path, fiscal_year: int | None) -> str:
    try:
        keywords = load_keywords(path)
    except InvalidRowsError as exc:
        raise _Rejected(
            f"{len(exc.errors)}件の問題があるため、何も変えていません。", _problems(exc.errors)
        ) from exc
    except FileFormatError as exc:
        raise _Rejected(f"読み込めませんでした：{exc.ja}。") from exc
    try:
        report = import_program_keywords(
            session=get_session(), keywords=keywords, fiscal_year=fiscal_year, actor=_actor()
        )
    except UnknownProgramIds as exc:
        raise _Rejected(
            f"{exc.fiscal_year}年度の事業にない事業IDがあるため、何も変えていません：{'、'.join(exc.ids[:10])}"
        ) from exc
    except ValueError as exc:  # no programs at all
        raise _Rejected("事業がまだありません。先に事業一覧を取り込んでください。") from exc
    text = f"キーワードを取り込みました（{report.fiscal_year}年度）：更新 {report.updated}件、変更なし {report.unchanged}件。"
    return text + _queue_rematch("keywords sheet") if report.updated else text


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
