"""``kyodo db``, ``kyodo programs``, ``kyodo proposals`` and ``kyodo rematch``:
the database from the command line and the nightly batch.

Every command takes its database from the app's settings (KYODO_DATABASE_URL,
KYODO_INSTANCE_PATH, the instance config.py), exits non-zero with one
readable line on error, and EXIT_LOCKED (75) when a rematch is already running.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from corpus import FileFormatError, InvalidRowsError, read_rows
from matcher.tokenize import default_jobs
from web.uploads import read_limits

EXIT_LOCKED = 75  # EX_TEMPFAIL: try again later


class RematchRunning(click.ClickException):
    """Another rematch holds the lock."""

    exit_code = EXIT_LOCKED


def _app() -> Any:
    from web import create_app

    return create_app()


@contextmanager
def _database() -> Iterator[tuple[Any, Engine]]:
    """The app and its engine (migrated and seeded); closed when the command ends."""
    from web.db import dispose, get_engine

    app = _app()
    try:
        yield app, get_engine(app)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"database {_safe_url(app)}: {_first_line(exc)}") from exc
    finally:
        dispose(app)


def _safe_url(app: Any) -> str:
    from sqlalchemy.engine import make_url

    return make_url(app.config["DATABASE_URL"]).render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _bad_rows(path: Path, errors: list[FileFormatError]) -> click.ClickException:
    lines = "; ".join(f"line {e.line}: {e.message}" if e.line else e.message for e in errors)
    return click.ClickException(
        f"{path.name}: {len(errors)} invalid rows, nothing imported ({lines}); "
        "fix them or pass --skip-invalid"
    )


def _queue_rematch(app: Any, reason: str) -> str:
    """Queue the rematch for the worker (docs/jobs.md); the change is kept if the queue is down."""
    from web.jobs import QueueError, request_rematch

    try:
        request_rematch(app, reason)
    except QueueError as exc:
        click.echo(f"warning: rematch not queued: {exc}; run kyodo rematch", err=True)
        return ""
    return "; rematch queued (kyodo worker runs it)"


# -- kyodo db -----------------------------------------------------------------


@click.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
def db_upgrade_command() -> None:
    """Create or upgrade the database schema to the newest migration.

    The bundled catalogue is loaded on first use when the program table is empty.
    """
    from models.db import make_engine, upgrade

    app = _app()
    engine = make_engine(app.config["DATABASE_URL"])
    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"database {_safe_url(app)}: {_first_line(exc)}") from exc
    finally:
        engine.dispose()
    click.echo(f"database {_safe_url(app)} is at the newest schema")


# -- kyodo programs -------------------------------------------------------------


@click.group("programs")
def programs_group() -> None:
    """The city's program catalogue, by fiscal year (年度)."""


@programs_group.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--fiscal-year", "fiscal_year_text", default=None,
              help="年度 of every row: 2026, 令和8 or R8 (else the file's 年度 column, else the current 年度).")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows and report the others.")
def programs_import_command(path: Path, fiscal_year_text: str | None, skip_invalid: bool) -> None:
    """Import a catalogue: CSV (UTF-8, BOM or cp932), XLSX or JSONL.

    Rows are keyed by (年度, id): importing the same file twice changes
    nothing, a changed row is updated. A file with an invalid row imports
    nothing and names every bad line, unless --skip-invalid. Programs of the
    newest fiscal year are active; older years stay, inactive, with their
    pairings.
    """
    from corpus.programs import fiscal_year_label, parse_fiscal_year
    from models.clock import fiscal_year as fiscal_year_of
    from models.clock import utcnow
    from models.program_imports import report_of
    from office.catalogue import ImportFile

    try:
        fiscal_year = parse_fiscal_year(fiscal_year_text) if fiscal_year_text else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fiscal-year") from None
    with _database() as (app, engine):
        file = ImportFile(path, fiscal_year, fiscal_year_of(utcnow()), read_limits(app.config), skip_invalid)
        batch = _import_programs(engine, file)
        if batch.default_fiscal_year is not None:
            label = fiscal_year_label(batch.default_fiscal_year)
            click.echo(f"年度の列も --fiscal-year もない行は {label} として取り込みます", err=True)
        changed = batch.added or batch.updated or batch.deactivated
        queued = _queue_rematch(app, f"catalogue {path.name}") if changed else ""
    skipped = f"; skipped {batch.skipped} invalid rows" if batch.skipped else ""
    click.echo(f"{path.name}: {report_of(batch).summary()}{skipped}{queued}")


def _import_programs(engine: Engine, file: Any) -> Any:
    """office.catalogue.import_catalogue with a progress bar on a terminal; a
    refused file is one ClickException line, as before the database is touched."""
    from models.import_tables import BAD_ROWS, PUBLISHED
    from models.locks import LockHeld
    from office.catalogue import import_catalogue
    from office.commands import Actor

    def progress(done: int, total: int) -> None:
        click.echo(f"\rstaged {done:,} / {total:,} rows", nl=done == total, err=True)

    try:
        batch = import_catalogue(engine=engine, file=file, actor=Actor(name="cli"),
                                 after_chunk=progress if sys.stderr.isatty() else None)
    except LockHeld as exc:
        raise click.ClickException(f"another import is running ({exc}); try again when it ends") from None
    if batch.status == PUBLISHED:
        return batch
    if batch.failure == BAD_ROWS:
        lines = "; ".join(f"line {p['line']}: {p['message']}" if p.get("line") else p["message"] for p in batch.problems)
        raise click.ClickException(f"{file.path.name}: {len(batch.problems)} invalid rows, nothing imported ({lines}); "
                                   "fix them or pass --skip-invalid")
    raise click.ClickException(batch.error or f"{file.path.name}: nothing imported")


@programs_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "xlsx"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="File to write (default: standard output; required for xlsx).")
@click.option("--fiscal-year", type=int, help="Only this 年度.")
def programs_export_command(fmt: str, output: Path | None, fiscal_year: int | None) -> None:
    """Export the catalogue with the corpus's Japanese headers; it imports back unchanged.

    A CSV file is written as UTF-8 with BOM, which Excel opens as is.
    """
    from models.programs import export_csv, export_jsonl, export_xlsx, list_programs

    with _database() as (_, engine), Session(engine) as session:
        programs = list_programs(session=session, fiscal_year=fiscal_year)
    if fmt == "xlsx":
        if output is None:
            raise click.ClickException("--format xlsx needs -o FILE")
        export_xlsx(programs, output)
    else:
        text = export_csv(programs) if fmt == "csv" else export_jsonl(programs)
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_bytes(text.encode("utf-8-sig" if fmt == "csv" else "utf-8"))
    if output is not None:
        click.echo(f"{output}: {len(programs)} programs", err=True)


@programs_group.command("keywords")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--fiscal-year", type=click.IntRange(1900, 2200), help="年度 of the programs (default: the newest).")
def programs_keywords_command(path: Path, fiscal_year: int | None) -> None:
    """Set the coordinator's keywords (キーワード) of programs from a file with
    the columns id and キーワード: CSV (UTF-8, BOM or cp932), XLSX or JSONL.

    The everyday words citizens use for what a program does; the matcher
    reads them from the next rematch on. All or nothing: an id that names no
    program of that fiscal year changes nothing. Programs not in the file
    keep their keywords.
    """
    from corpus import load_keywords
    from office.catalogue import import_program_keywords
    from office.commands import Actor

    try:
        keywords = load_keywords(path, read_limits(_app().config))
    except InvalidRowsError as exc:
        lines = "; ".join(f"line {e.line}: {e.message}" for e in exc.errors)
        raise click.ClickException(f"{path.name}: {len(exc.errors)} invalid rows, nothing changed ({lines})") from exc
    except FileFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    with _database() as (app, engine), Session(engine) as session:
        try:
            report = import_program_keywords(
                session=session, keywords=keywords, fiscal_year=fiscal_year, actor=Actor(name="cli")
            )
        except ValueError as exc:
            raise click.ClickException(f"{path.name}: {exc}") from exc
        queued = _queue_rematch(app, f"keywords {path.name}") if report.updated else ""
    click.echo(f"{path.name}: {report.summary()}{queued}")


# -- kyodo proposals ------------------------------------------------------------


@click.group("proposals")
def proposals_group() -> None:
    """Proposals received outside the web form."""


@proposals_group.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Import the valid records and report the others.")
def proposals_import_command(path: Path, skip_invalid: bool) -> None:
    """Import proposals received on paper: JSONL or CSV with the API's keys.

    Keys: organization, representative, email, phone, title, body,
    expected_effect, collaboration_type (委託/補助/共催/後援/その他),
    budget_thousand_yen, and an optional id kept as an external reference.
    Only title and body are required. Importing twice changes nothing; a file
    with an invalid record imports nothing unless --skip-invalid. Imported
    proposals get their suggestions at once.
    """
    from models.proposals import proposals_from_rows
    from office.commands import Actor
    from office.intake import import_paper_proposals
    from web.db import get_matching

    try:
        rows = list(read_rows(path, read_limits(_app().config)))
        proposals_in = proposals_from_rows(path, rows, skip_invalid=skip_invalid)
    except InvalidRowsError as exc:
        raise _bad_rows(path, exc.errors) from exc
    except FileFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    with _database() as (app, engine), Session(engine) as session:
        report = import_paper_proposals(
            session=session, proposals_in=proposals_in, source_file=path.name, actor=Actor(name="cli")
        )
        written = get_matching(app).suggest_online(session=session, proposal_ids=list(report.proposal_ids))
    skipped = len(rows) - len(proposals_in)
    extra = f"; skipped {skipped} invalid records" if skipped else ""
    click.echo(f"{path.name}: {report.summary()}{extra}; {written} suggestions")


# -- kyodo rematch ----------------------------------------------------------------


def _progress(total_hint: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on a terminal, plain log lines otherwise (cron)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar: dict[str, Any] = {}

        def update(done: int, total: int) -> None:
            if "bar" not in bar:
                bar["bar"] = tqdm(total=total, unit="proposal", desc=total_hint)
            bar["bar"].update(done - bar["bar"].n)

        def close() -> None:
            if "bar" in bar:
                bar["bar"].close()

        return update, close

    def log(done: int, total: int) -> None:
        click.echo(f"rematch: {done}/{total} proposals", err=True)

    return log, lambda: None


@click.command("rematch")
@click.option("--top-k", type=click.IntRange(1, 100), help="Suggestions per proposal (default: the TOP_K setting).")
@click.option("--jobs", type=click.IntRange(0, 64), default=1, show_default=True,
              help="Processes for tokenizing (0: one per core, up to 8).")
@click.option("--chunk-size", type=click.IntRange(1), default=1000, hidden=True)
@click.option("--pause-after-first-chunk", type=click.Path(path_type=Path), hidden=True,
              help="Tests: after the first chunk, create this file and sleep (to be killed).")
def rematch_command(top_k: int | None, jobs: int, chunk_size: int, pause_after_first_chunk: Path | None) -> None:
    """Rematch every proposal on all active programs and publish atomically.

    Readers see the previous run's suggestions until the new run is complete.
    Decisions are never touched: a rejected pair is not offered again, an
    accepted pair stays listed. Exit 0 on success, 1 on failure (the previous
    suggestions stay), 75 when another rematch is running. For cron and
    systemd see docs/rematch.md.
    """
    from models.locks import LockHeld
    from web.db import get_matching

    update, close = _progress("rematch")

    def after_chunk(_run_id: int, _written: int) -> None:
        if pause_after_first_chunk is not None:
            pause_after_first_chunk.touch()
            time.sleep(600)

    try:
        with _database() as (app, engine):
            report = get_matching(app).rematch(
                engine=engine,
                top_k=top_k,
                chunk_size=chunk_size,
                n_jobs=default_jobs(jobs),
                on_progress=update,
                after_chunk=after_chunk,
            )
    except LockHeld as exc:
        raise RematchRunning(f"{exc}; not started") from exc
    except (SQLAlchemyError, LookupError, ValueError, RuntimeError, OSError) as exc:
        raise click.ClickException(f"rematch failed, previous suggestions kept: {_first_line(exc)}") from exc
    finally:
        close()
    click.echo(f"rematch: {report.summary()}")


# -- kyodo embeddings ----------------------------------------------------------------


@click.group("embeddings")
def embeddings_group() -> None:
    """The embedding cache of the semantic layer (MATCH_MODE semantic or auto)."""


@embeddings_group.command("rebuild")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=64, show_default=True,
              help="Texts embedded and committed together.")
def embeddings_rebuild_command(batch_size: int) -> None:
    """Embed every active program and every proposal with the current model.

    For a model change: texts already cached for the current model version
    are skipped and each batch is committed, so an interrupted rebuild
    resumes where it stopped. The nightly rematch then embeds only new or
    changed texts. Needs the extra kyodo-match[semantic].
    """
    from matcher.semantic import SemanticUnavailable, shared_embedder
    from office.embeddings import rebuild_embeddings

    try:
        embedder = shared_embedder()
    except SemanticUnavailable as exc:
        raise click.ClickException(f"embeddings not rebuilt: {exc}") from exc
    with _database() as (_, engine), click.progressbar(
        length=0, label="embeddings", file=sys.stderr, show_pos=True
    ) as bar:
        from sqlmodel import func, select

        from models.tables import Program, Proposal

        with Session(engine) as session:
            bar.length = int(session.exec(select(func.count()).select_from(Program).where(Program.active)).one()) + int(
                session.exec(select(func.count()).select_from(Proposal)).one()
            )
        report = rebuild_embeddings(engine=engine, embedder=embedder, batch_size=batch_size, on_progress=bar.update)
    click.echo(
        f"embeddings ({embedder.model_version}): {report.n_texts} texts, "
        f"{report.n_cached} already cached, {report.n_embedded} embedded"
    )


@embeddings_group.command("prune")
def embeddings_prune_command() -> None:
    """Delete cached embeddings nobody reads any more.

    Vectors of another model version, and of texts that no active program
    and no proposal has now (edited proposals, retired programs). Safe at any
    time: a text pruned by mistake is embedded again by the next rematch.
    Does not load the model.
    """
    from office.embeddings import prune_embeddings

    with _database() as (_, engine):
        deleted = prune_embeddings(engine=engine)
    click.echo(f"embeddings: {deleted} unused vectors deleted")
