"""``kyodo departments``: the city's departments (担当課) from and to the
office's own spreadsheet. As ``kyodo programs``: the database from the app's
settings, exit 1 with readable lines on error."""

from __future__ import annotations

from pathlib import Path

import click
from sqlmodel import Session

from corpus import FileFormatError, InvalidRowsError
from web.cli_data import _app, _database
from web.uploads import read_limits


@click.group("departments")
def departments_group() -> None:
    """The city's departments (担当課): import, export."""


@departments_group.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def departments_import_command(path: Path) -> None:
    """Import departments: CSV (UTF-8, BOM or cp932), XLSX or JSONL.

    Columns: 担当課 (required), 部, メールアドレス (several: comma separated),
    所掌事務, 有効 (はい/いいえ); or name, parent, emails, duties, active. A
    department is found by its name: a known one is updated (only the columns
    the file has), a new one added; none is ever deleted. A file with a bad
    row imports nothing and names every bad line.
    """
    from models.departments import load_departments
    from office.commands import Actor
    from office.departments import import_departments

    try:
        records = load_departments(path, read_limits(_app().config))
    except InvalidRowsError as exc:
        lines = "\n".join(f"line {e.line}: {e.message}" if e.line else e.message for e in exc.errors)
        raise click.ClickException(f"{path.name}: {len(exc.errors)} invalid rows, nothing imported\n{lines}") from exc
    except FileFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    with _database() as (_, engine), Session(engine) as session:
        report = import_departments(session=session, records=records, source_file=path.name, actor=Actor(name="cli"))
    click.echo(f"{path.name}: {report.summary()}")


@departments_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="File to write (default: standard output; required for xlsx).")
def departments_export_command(fmt: str, output: Path | None) -> None:
    """Export every department with the import's Japanese headers; it imports back unchanged.

    A CSV file is written as UTF-8 with BOM, which Excel opens as is. A cell
    Excel would run as a formula (= + - @) gets a leading ', which the import removes.
    """
    from models.departments import export_csv, export_xlsx
    from models.workflow import all_departments

    if fmt == "xlsx" and output is None:
        raise click.ClickException("--format xlsx needs -o FILE")
    with _database() as (_, engine), Session(engine) as session:
        departments = all_departments(session=session)
    if fmt == "xlsx":
        assert output is not None
        export_xlsx(departments, output)
    elif output is None:
        click.echo(export_csv(departments), nl=False)
    else:
        output.write_bytes(export_csv(departments).encode("utf-8-sig"))
    if output is not None:
        click.echo(f"{output}: {len(departments)} departments", err=True)
