"""The catalogue import of the console: the uploaded file kept in the instance
folder, imported at once when small or by the worker (the ``import_programs``
task of web.jobs) with a page that shows its progress, and what that page and
the flash message say. The import itself is office.catalogue's."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from corpus.programs import fiscal_year_label
from models.import_tables import BAD_ROWS, FILE_UNREADABLE, INTERRUPTED, NO_ROWS, PUBLISHED
from models.locks import LockHeld
from models.tables import ProgramImport
from office.catalogue import ImportFile, run_import
from web.db import get_engine
from web.uploads import read_limits

FOLDER = "imports"  # in the instance folder: the uploads waiting for the worker
LOCKED_DELAY = 15  # seconds before a queued import tries again while another one runs


def upload_path(app: Flask, import_id: int, suffix: str) -> Path:
    """Where the upload of ``import_id`` waits (readable by this user only)."""
    folder = Path(app.instance_path) / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / f"{import_id}{suffix}"


def queue_import(app: Flask, batch: ProgramImport, file: ImportFile) -> None:
    """Hand the import to the worker; web.jobs.QueueError when the queue is down."""
    from web.jobs import QueueError, get_jobs

    try:
        get_jobs(app).import_programs(batch.id, str(file.path), file.fiscal_year, file.default_fiscal_year)
    except Exception as exc:  # Redis down, the SQLite file unwritable…
        raise QueueError(f"the job queue is unavailable: {type(exc).__name__}: {exc}") from exc


def run_queued_import(app: Flask, import_id: int, path: str, fiscal_year: int | None,
                      default_fiscal_year: int | None) -> None:
    """The worker's task: run the import, then queue the rematch if it changed the catalogue."""
    from huey.exceptions import RetryTask

    file = ImportFile(Path(path), fiscal_year, default_fiscal_year, read_limits(app.config))
    with app.app_context():
        try:
            batch = run_import(engine=get_engine(app), import_id=import_id, file=file)
        except LockHeld as exc:  # another import runs: this one waits its turn
            raise RetryTask(delay=LOCKED_DELAY) from exc
    file.path.unlink(missing_ok=True)
    app.logger.info("catalogue: import %s of %s %s", import_id, batch.source_file, batch.status)
    queue_rematch_after(app, batch)


def queue_rematch_after(app: Flask, batch: ProgramImport) -> str:
    """Queue the rematch a published import that changed the catalogue needs; what to say of it."""
    from web.jobs import QueueError, request_rematch

    if batch.status != PUBLISHED or not (batch.added or batch.updated or batch.deactivated):
        return ""
    try:
        request_rematch(app, f"catalogue {batch.source_file}")
    except QueueError:
        app.logger.exception("jobs: the rematch after import %s could not be queued", batch.id)
        return "再マッチを予約できませんでした（ジョブキューに接続できません）。管理者に連絡してください。"
    return "再マッチを予約しました（数分で候補に反映されます）。"


def result_message(batch: ProgramImport) -> str:
    """「事業一覧を取り込みました（2026年度）：追加 2件、…」 of a published import."""
    years = "・".join(str(y) for y in batch.fiscal_years)
    text = (f"事業一覧を取り込みました（{years}年度）：追加 {batch.added}件、更新 {batch.updated}件、"
            f"変更なし {batch.unchanged}件")
    if batch.default_fiscal_year is not None:
        text += f"。年度の列がない行は{fiscal_year_label(batch.default_fiscal_year)}として取り込みました"
    if batch.deactivated:
        text += f"。前年度までの {batch.deactivated}件は過年度になりました"
    if batch.skipped:
        text += f"。問題のある {batch.skipped}件は取り込んでいません"
    return text + "。"


def failure_summary(batch: ProgramImport) -> str:
    """Why a failed import imported nothing, in one sentence."""
    if batch.failure == FILE_UNREADABLE and batch.problems:
        return f"読み込めませんでした：{batch.problems[0]['ja']}。"
    if batch.failure == BAD_ROWS:
        return f"{len(batch.problems)}件の問題があるため、何も取り込んでいません。直してからもう一度送ってください。"
    if batch.failure == NO_ROWS:
        return "事業が1件もありません。"
    if batch.failure == INTERRUPTED:
        return "取り込みが途中で止まったため、何も取り込んでいません（事業一覧は前のままです）。もう一度送ってください。"
    return "取り込み中にエラーが起きたため、何も取り込んでいません（事業一覧は前のままです）。管理者に連絡してください。"


def problem_lines(batch: ProgramImport) -> list[str]:
    """Each bad row of a refused file: 「3行目：事業名が空です」."""
    if batch.failure != BAD_ROWS:
        return []
    return [f"{p['line']}行目：{p['ja']}" if p.get("line") else str(p["ja"]) for p in batch.problems]
