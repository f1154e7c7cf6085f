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

from corpus import FileFormatError, InvalidRowsError, load_keywords
from models.clock import as_utc, utcnow
from models.clock import fiscal_year as fiscal_year_of
from models.import_tables import FINISHED, PUBLISHED
from models.locks import LockHeld
from models.program_imports import recent_imports
from models.programs import UnknownProgramIds, export_csv, list_programs
from models.review import (
    departments,
    pairs_for_programs,
    programs_without_keywords,
)
from models.tables import Program, ProgramImport
from office.catalogue import (
    ImportFile,
    fail_unqueued,
    import_program_keywords,
    run_import,
    set_program_keywords,
    start_import,
)
from office.search import find_programs
from web.auth import current_actor, require_login
from web.catalogue_import import (
    failure_summary,
    problem_lines,
    queue_import,
    queue_rematch_after,
    result_message,
    upload_path,
)
from web.db import get_engine, get_session
from web.departments import department_page
from web.forms import KeywordsForm, ProgramsImportForm
from web.jobs import QueueError, last_seen_worker, request_rematch
from web.uploads import read_limits

bp = Blueprint("programs", __name__)
REFRESH_SECONDS = 3  # how often a running import's page reloads itself


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
    """One department's page, paginated (web.departments.department_page)."""
    return department_page(name)


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
    of the command line, all or nothing, each bad line named. A large program
    list is imported by the worker: the page of its progress follows."""
    form = ProgramsImportForm()
    if not form.validate_on_submit():
        return _upload_page(form, [], 400 if form.errors else 200)
    upload = form.file.data
    if form.kind.data != "keywords":
        return _upload_catalogue(form)
    with tempfile.TemporaryDirectory(prefix="kyodo-upload-") as folder:
        path = Path(folder) / f"upload{Path(upload.filename or '').suffix.lower()}"
        upload.save(path)
        try:
            message = _import_keywords(path, form.year)
        except _Rejected as rejected:
            form.file.errors = [rejected.summary]
            return _upload_page(form, rejected.problems, 400)
    flash(f"{upload.filename}：{message}", "info")
    return redirect(url_for("programs.catalogue"))


def _upload_page(form: ProgramsImportForm, problems: list[str], status: int):  # type: ignore[no-untyped-def]
    recent = recent_imports(session=get_session(), limit=5)
    return render_template("programs_import.html", form=form, problems=problems, recent=recent), status


def _upload_catalogue(form: ProgramsImportForm):  # type: ignore[no-untyped-def]
    """Keep the file, then import it now (small) or queue it (large, or another import is running)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    upload = form.file.data
    source_file = (upload.filename or "upload")[:200]
    batch = start_import(session=get_session(), source_file=source_file, actor=_actor(), fiscal_year=form.year)
    path = upload_path(app, batch.id or 0, Path(source_file).suffix.lower())
    upload.save(path)
    file = ImportFile(path, form.year, fiscal_year_of(utcnow()), read_limits())
    if path.stat().st_size <= app.config["IMPORT_BACKGROUND_BYTES"]:
        try:
            batch = run_import(engine=get_engine(), import_id=batch.id or 0, file=file)
        except LockHeld:
            pass  # another import is running: this one waits for it in the worker
        else:
            path.unlink(missing_ok=True)
            return _imported(form, batch, app)
    try:
        queue_import(app, batch, file)
    except QueueError as exc:
        current_app.logger.exception("jobs: import %s could not be queued", batch.id)
        path.unlink(missing_ok=True)
        fail_unqueued(session=get_session(), batch=batch, error=str(exc))
        form.file.errors = ["取り込みを予約できませんでした（ジョブキューに接続できません）。管理者に連絡してください。"]
        return _upload_page(form, [], 503)
    return redirect(url_for("programs.import_status", import_id=batch.id))


def _imported(form: ProgramsImportForm, batch: ProgramImport, app: Flask):  # type: ignore[no-untyped-def]
    if batch.status != PUBLISHED:
        form.file.errors = [failure_summary(batch)]
        return _upload_page(form, problem_lines(batch), 400)
    flash(f"{batch.source_file}：{result_message(batch)}{queue_rematch_after(app, batch)}", "info")
    return redirect(url_for("programs.catalogue"))


@bp.route("/programs/imports/<int:import_id>")
def import_status(import_id: int):  # type: ignore[no-untyped-def]
    """One import's progress (the page reloads itself until it ends), then its result."""
    batch = get_session().get(ProgramImport, import_id)
    if batch is None:
        abort(404)
    running = batch.status not in FINISHED
    percent = int(100 * batch.rows_done / batch.rows_total) if batch.rows_total else 0
    page = render_template(
        "programs_import_status.html", batch=batch, running=running, percent=percent,
        summary=result_message(batch) if batch.status == PUBLISHED else failure_summary(batch),
        problems=problem_lines(batch), worker_silent=running and _worker_silent(),
    )
    # A Refresh header rather than a script: the page works under a CSP without inline scripts.
    return page, 200, {"Refresh": str(REFRESH_SECONDS)} if running else {}


def _worker_silent() -> bool:
    """No worker has run its every-minute task lately: a queued import waits for one."""
    from web.jobs_views import WORKER_SILENT_AFTER

    try:
        seen = last_seen_worker(current_app._get_current_object())  # type: ignore[attr-defined]
    except Exception:  # the queue is down: say nothing more here
        return False
    return seen is None or utcnow() - as_utc(seen) > WORKER_SILENT_AFTER


class _Rejected(Exception):
    """A file that imports nothing: a summary beside the field and each problem listed."""

    def __init__(self, summary: str, problems: list[str] | None = None):
        super().__init__(summary)
        self.summary = summary
        self.problems = problems or []


def _problems(errors: list[FileFormatError]) -> list[str]:
    return [f"{e.line}行目：{e.ja}" if e.line else e.ja for e in errors]


def _import_keywords(path: Path, fiscal_year: int | None) -> str:
    try:
        keywords = load_keywords(path, read_limits())
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
