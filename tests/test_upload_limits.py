"""Bounded uploads (issue 13, row 2): every import reads at most
IMPORT_MAX_ROWS rows and IMPORT_MAX_BYTES once expanded, streaming; a file
over either, the 156 KB zip bomb of a million rows first, is refused early
with one Japanese message on the page (one English line and exit 1 on the
command line) and nothing is stored; on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import io
import json
import time
import tracemalloc
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func
from sqlmodel import select

from corpus.files import FileFormatError, ReadLimits, read_rows
from models.tables import Program, Proposal
from models.workflow_tables import Department
from office.accounts import create_user
from web.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "upload-limits-password"
HEADER = ["id", "年度", "施策名", "目的", "事業名", "取り組み内容", "担当課"]


def _bench():  # the zip bomb is built by the benchmark's own function, one home for it
    spec = importlib.util.spec_from_file_location("bench_upload_memory", ROOT / "benchmarks" / "bench_upload_memory.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """The issue's bomb (1,000,000 rows, 156 KB, 53 MB expanded) and a small
    one of 300 rows (under every byte cap: only a row limit stops it)."""
    folder = tmp_path_factory.mktemp("bombs")
    bench = _bench()
    return {"big": bench.write_bomb(folder / "bomb.xlsx", 1_000_000),
            "rows": bench.write_bomb(folder / "rows.xlsx", 300)}


def _program_rows(count: int) -> list[list[str]]:
    return [[f"L{i:05d}", "2026", "防災のまちづくり", "市民の防災意識を高める", f"防災講座{i}",
             "地域で防災講座を行う", "危機管理課"] for i in range(count)]


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\r\n".join(",".join(r) for r in [header, *rows]) + "\r\n", encoding="utf-8")
    return path


def _xlsx(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    book = Workbook()
    for row in [header, *rows]:
        book.active.append(row)
    book.save(path)
    return path


def _jsonl(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def _count(session, table) -> int:
    session.expire_all()
    return int(session.exec(select(func.count()).select_from(table)).one())


# -- the readers -----------------------------------------------------------------------


def test_the_zip_bomb_is_refused_from_the_zip_directory_at_once(bombs):
    path = bombs["big"]
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(FileFormatError) as info:
            next(read_rows(path))
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.ja.startswith("ファイルが大きすぎます（展開すると53.0 MB、上限 40.0 MB）")
    assert str(info.value) == "bomb.xlsx: file expands to 53,002,861 bytes, over the limit of 40,000,000"
    # Not one row parsed: no time, and next to no memory (a million rows were about 1 GB).
    assert seconds < 1.0 and peak < 2_000_000, (seconds, peak)


@pytest.mark.parametrize("kind", ["csv", "xlsx", "jsonl"])
def test_rows_past_the_limit_stop_the_reader_at_the_first_one_too_many(tmp_path, kind):
    rows = _program_rows(150)
    if kind == "jsonl":
        path = _jsonl(tmp_path / "list.jsonl", [dict(zip(HEADER, r, strict=True)) for r in rows])
    else:
        path = (_csv if kind == "csv" else _xlsx)(tmp_path / f"list.{kind}", HEADER, rows)
    read = []
    with pytest.raises(FileFormatError) as info:
        for row in read_rows(path, ReadLimits(max_rows=100)):
            read.append(row)
    assert len(read) == 100  # streamed: what came before the limit was read, nothing after
    assert info.value.ja == "行数が上限の100行を超えています。ファイルを分けて取り込んでください"
    assert info.value.line is None and "more than 100 rows" in str(info.value)
    assert len(list(read_rows(path, ReadLimits(max_rows=150)))) == 150


def test_blank_sheet_rows_count_against_the_limit(tmp_path):
    """A sheet whose one cell sits at row 1,000,000 is a million rows to walk through."""
    book = Workbook()
    book.active.append(HEADER)
    book.active.append(_program_rows(1)[0])
    book.active.cell(row=1_000_000, column=1, value="x")
    book.save(tmp_path / "far.xlsx")
    started = time.monotonic()
    with pytest.raises(FileFormatError, match="more than 1,000 rows"):
        list(read_rows(tmp_path / "far.xlsx", ReadLimits(max_rows=1_000)))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_text_file_over_the_byte_cap_is_refused_before_its_first_row(tmp_path, kind):
    rows = _program_rows(100)
    path = (_csv(tmp_path / "big.csv", HEADER, rows) if kind == "csv"
            else _jsonl(tmp_path / "big.jsonl", [dict(zip(HEADER, r, strict=True)) for r in rows]))
    assert path.stat().st_size > 5_000
    reader = read_rows(path, ReadLimits(max_bytes=5_000))
    with pytest.raises(FileFormatError) as info:
        next(reader)
    assert info.value.ja.startswith("ファイルが大きすぎます（") and "上限 5 KB" in info.value.ja


# -- the console's upload pages --------------------------------------------------------------


@pytest.fixture
def coordinator_client(client, session):
    create_user(session=session, username="limits", password=PASSWORD, display_name="支援室 上限")
    assert client.post("/login", data={"username": "limits", "password": PASSWORD}).status_code == 302
    return client


def _upload(client, url: str, path: Path, **fields: str):
    with path.open("rb") as f:
        return client.post(url, data={**fields, "file": (io.BytesIO(f.read()), path.name)},
                           content_type="multipart/form-data")


def _refused_with(response, message: str) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == 400, html[:2000]
    assert 'id="file-error"' in html and f"読み込めませんでした：{message}" in html, html[:3000]


def test_the_zip_bomb_upload_is_refused_on_the_page_and_stores_nothing(coordinator_client, session, bombs):
    before = _count(session, Program)
    started = time.monotonic()
    response = _upload(coordinator_client, "/programs/import", bombs["big"], kind="catalogue")
    _refused_with(response, "ファイルが大きすぎます（展開すると53.0 MB、上限 40.0 MB）。ファイルを分けて取り込んでください")
    assert time.monotonic() - started < 5
    assert _count(session, Program) == before


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_catalogue_over_the_row_limit_is_refused_on_the_page(app, coordinator_client, session, tmp_path, bombs,
                                                                kind):
    app.config["IMPORT_MAX_ROWS"] = 50
    path = _csv(tmp_path / "list.csv", HEADER, _program_rows(51)) if kind == "csv" else bombs["rows"]
    before = _count(session, Program)
    response = _upload(coordinator_client, "/programs/import", path, kind="catalogue")
    _refused_with(response, "行数が上限の50行を超えています。ファイルを分けて取り込んでください")
    assert _count(session, Program) == before
    assert session.exec(select(Program).where(Program.fiscal_year == 2026)).all() == []


def test_a_catalogue_over_the_byte_cap_is_refused_on_the_page(app, coordinator_client, session, tmp_path):
    app.config["IMPORT_MAX_BYTES"] = 5_000
    before = _count(session, Program)
    response = _upload(coordinator_client, "/programs/import", _csv(tmp_path / "list.csv", HEADER, _program_rows(60)),
                       kind="catalogue")
    _refused_with(response, "ファイルが大きすぎます（8 KB、上限 5 KB）")
    assert _count(session, Program) == before


def test_a_keywords_sheet_over_the_row_limit_is_refused_on_the_page(app, coordinator_client, session, tmp_path):
    app.config["IMPORT_MAX_ROWS"] = 10
    sheet = _csv(tmp_path / "keywords.csv", ["id", "キーワード"], [[f"H20-{i:02d}", "防災"] for i in range(1, 12)])
    response = _upload(coordinator_client, "/programs/import", sheet, kind="keywords")
    _refused_with(response, "行数が上限の10行を超えています")
    session.expire_all()
    assert all(p.keywords != "防災" for p in session.exec(select(Program)).all())


def test_a_departments_file_over_the_row_limit_is_refused_on_the_page(app, coordinator_client, session, tmp_path):
    app.config["IMPORT_MAX_ROWS"] = 10
    before = _count(session, Department)
    path = _csv(tmp_path / "departments.csv", ["担当課"], [[f"上限課{i}"] for i in range(11)])
    response = coordinator_client.post(
        "/departments/import", data={"file": (io.BytesIO(path.read_bytes()), path.name)},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "読み込めませんでした：行数が上限の10行を超えています" in html
    assert _count(session, Department) == before


# -- the command line -------------------------------------------------------------------------


def _one_line_error(result, text: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], result.stderr


def test_kyodo_programs_import_refuses_the_zip_bomb_in_one_line(runner, session, bombs):
    before = _count(session, Program)
    result = runner.invoke(cli, ["programs", "import", str(bombs["big"])])
    _one_line_error(result, "bomb.xlsx: file expands to 53,002,861 bytes, over the limit of 40,000,000")
    assert _count(session, Program) == before


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_kyodo_programs_import_refuses_a_file_over_the_row_setting(runner, session, tmp_path, kind):
    path = (_csv if kind == "csv" else _xlsx)(tmp_path / f"list.{kind}", HEADER, _program_rows(51))
    before = _count(session, Program)
    result = runner.invoke(cli, ["programs", "import", str(path)], env={"KYODO_IMPORT_MAX_ROWS": "50"})
    _one_line_error(result, f"list.{kind}: more than 50 rows under the header")
    assert _count(session, Program) == before
    assert runner.invoke(cli, ["programs", "import", str(path)], env={"KYODO_IMPORT_MAX_ROWS": "51"}).exit_code == 0


def test_the_other_imports_of_the_command_line_keep_the_limits(runner, session, tmp_path):
    limit = {"KYODO_IMPORT_MAX_ROWS": "10"}
    departments = _csv(tmp_path / "departments.csv", ["担当課"], [[f"上限課{i}"] for i in range(11)])
    keywords = _csv(tmp_path / "keywords.csv", ["id", "キーワード"], [[f"H20-{i:02d}", "防災"] for i in range(1, 12)])
    proposals = _jsonl(tmp_path / "paper.jsonl", [{"title": f"紙の提案{i}", "body": "地域の見守り活動を行いたい"}
                                                  for i in range(11)])
    counts = _count(session, Department), _count(session, Proposal)
    _one_line_error(runner.invoke(cli, ["departments", "import", str(departments)], env=limit),
                    "departments.csv: more than 10 rows")
    _one_line_error(runner.invoke(cli, ["programs", "keywords", str(keywords)], env=limit),
                    "keywords.csv: more than 10 rows")
    _one_line_error(runner.invoke(cli, ["proposals", "import", str(proposals)], env=limit),
                    "paper.jsonl: more than 10 rows")
    assert (_count(session, Department), _count(session, Proposal)) == counts
