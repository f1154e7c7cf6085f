"""``kyodo programs import/export`` and ``kyodo proposals import``: formats,
idempotence, all-or-nothing, fiscal years; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from factories import create_random_proposal, decide
from openpyxl import Workbook
from sqlalchemy import func
from sqlmodel import select

from models.tables import Decision, Program, Proposal, Suggestion
from web.cli import cli

HEADER = ["id", "年度", "施策名", "目的", "事業名", "取り組み内容", "担当課", "予算"]
ROWS = [
    ["R08-01", "2026", "防災のまちづくり", "市民の防災意識を高める", "防災講座の開催", "地域で防災講座と避難訓練を行う", "危機管理課", "500千円"],
    ["R08-02", "2026", "子育て支援", "子育て家庭を地域で支える", "親子サロン", "子育て中の親子の交流の場をつくる", "子育て支援課", "-"],
    ["R08-03", "2026", "環境美化", "まちの環境を守る", "河川清掃", "市民参加の河川清掃を行う", "環境課 市民協働課", "120千円"],
]


def write_csv(path, rows, encoding="utf-8"):
    lines = [",".join(HEADER)] + [",".join(row) for row in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def write_xlsx(path, rows):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def programs_of(session, year):
    session.expire_all()
    return session.exec(select(Program).where(Program.fiscal_year == year).order_by(Program.external_id)).all()


def test_cp932_csv_import_is_idempotent(runner, session, tmp_path):
    path = write_csv(tmp_path / "catalogue.csv", ROWS, encoding="cp932")
    first = runner.invoke(cli, ["programs", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "added 3, updated 0, unchanged 0" in first.output
    programs = programs_of(session, 2026)
    assert [p.name for p in programs] == ["防災講座の開催", "親子サロン", "河川清掃"]
    assert programs[0].budget_thousand_yen == 500
    assert programs[2].department == "環境課 市民協働課"
    second = runner.invoke(cli, ["programs", "import", str(path)])
    assert second.exit_code == 0, second.output
    assert "added 0, updated 0, unchanged 3" in second.output
    assert [p.updated_at for p in programs_of(session, 2026)] == [p.updated_at for p in programs]


def test_xlsx_import_and_a_changed_row_updates(runner, session, tmp_path):
    assert runner.invoke(cli, ["programs", "import", str(write_xlsx(tmp_path / "a.xlsx", ROWS))]).exit_code == 0
    changed = [row[:] for row in ROWS]
    changed[1][5] = "子育て中の親子の交流の場と相談窓口をつくる"
    result = runner.invoke(cli, ["programs", "import", str(write_xlsx(tmp_path / "b.xlsx", changed))])
    assert result.exit_code == 0, result.output
    assert "added 0, updated 1, unchanged 2" in result.output
    program = programs_of(session, 2026)[1]
    assert program.activities.endswith("相談窓口をつくる")
    assert program.source_file == "b.xlsx"


def test_invalid_rows_import_nothing_and_are_all_named(runner, session, tmp_path):
    bad = [row[:] for row in ROWS]
    bad[0][4] = ""  # 事業名 empty: line 2
    bad[2][3] = bad[2][5] = ""  # 目的 and 取り組み内容 empty: line 4
    path = write_csv(tmp_path / "bad.csv", bad)
    result = runner.invoke(cli, ["programs", "import", str(path)])
    assert result.exit_code == 1
    assert "line 2" in result.output and "line 4" in result.output and "line 3" not in result.output
    assert "nothing imported" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert programs_of(session, 2026) == []
    skipped = runner.invoke(cli, ["programs", "import", str(path), "--skip-invalid"])
    assert skipped.exit_code == 0, skipped.output
    assert "added 1" in skipped.output and "skipped 2 invalid rows" in skipped.output
    assert [p.external_id for p in programs_of(session, 2026)] == ["R08-02"]


def test_fiscal_year_option_and_missing_year(runner, session, tmp_path):
    path = tmp_path / "noyear.jsonl"
    path.write_text(
        json.dumps({"id": "X1", "name": "防災講座", "purpose": "防災意識を高める"}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    from models.clock import fiscal_year, utcnow

    current = fiscal_year(utcnow())
    defaulted = runner.invoke(cli, ["programs", "import", str(path)])
    assert defaulted.exit_code == 0 and f"{current}年度） として取り込みます" in defaulted.output
    assert [p.external_id for p in programs_of(session, current)] == ["X1"]
    for option, year in (("2027", 2027), ("令和10", 2028), ("R11", 2029)):
        accepted = runner.invoke(cli, ["programs", "import", str(path), "--fiscal-year", option])
        assert accepted.exit_code == 0, accepted.output
        assert [p.external_id for p in programs_of(session, year)] == ["X1"]
    bad = runner.invoke(cli, ["programs", "import", str(path), "--fiscal-year", "来年"])
    assert bad.exit_code == 2 and "年度「来年」が読めません" in bad.output


@pytest.mark.parametrize("year", ["3000", "-5", "1999"])
def test_a_fiscal_year_out_of_range_is_a_named_bad_line_and_deactivates_nothing(runner, session, tmp_path, year):
    before = {p.id for p in session.exec(select(Program).where(Program.active))}
    path = write_csv(tmp_path / "typo.csv", [ROWS[0], [ROWS[1][0], year, *ROWS[1][2:]]])
    refused = runner.invoke(cli, ["programs", "import", str(path)])
    assert refused.exit_code == 1 and "line 3" in refused.output, refused.output
    session.expire_all()
    assert {p.id for p in session.exec(select(Program).where(Program.active))} == before


def test_next_fiscal_year_keeps_this_years_programs_and_pairings(runner, session, tmp_path):
    proposal = create_random_proposal(session)
    old_program = session.exec(select(Program).where(Program.external_id == "H20-01")).one()
    decide(session, proposal.id, old_program.id, "accepted")
    result = runner.invoke(cli, ["programs", "import", str(write_csv(tmp_path / "r8.csv", ROWS))])
    assert result.exit_code == 0, result.output
    assert "30 programs of earlier fiscal years set inactive" in result.output
    session.expire_all()
    old = programs_of(session, 2008)
    assert len(old) == 30 and not any(p.active for p in old)
    assert all(p.active for p in programs_of(session, 2026))
    decision = session.exec(select(Decision)).one()
    assert (decision.program_id, decision.verdict) == (old_program.id, "accepted")


def test_export_imports_back_unchanged(runner, tmp_path):
    for fmt in ("csv", "jsonl", "xlsx"):
        path = tmp_path / f"export.{fmt}"
        exported = runner.invoke(cli, ["programs", "export", "--format", fmt, "-o", str(path)])
        assert exported.exit_code == 0, exported.output
        again = runner.invoke(cli, ["programs", "import", str(path)])
        assert again.exit_code == 0, again.output
        assert "added 0, updated 0, unchanged 30" in again.output, fmt
    assert (tmp_path / "export.csv").read_bytes().startswith(b"\xef\xbb\xbfid,")


def test_export_to_stdout_has_the_corpus_headers(runner):
    result = runner.invoke(cli, ["programs", "export", "--format", "csv"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("id,年度,大項目,中項目,施策番号,施策名,目的,事業名")
    assert len(lines) == 31


PAPER = [
    {"id": "paper-1", "title": "地域の防災講座", "body": "自治会と防災講座と避難訓練を開きたい。", "organization": "NPO みらい",
     "collaboration_type": "共催", "budget_thousand_yen": "300", "email": "info@example.org"},
    {"title": "親子サロン", "body": "子育て中の親子が集まるサロンを開きたい。"},
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_proposals_import_is_idempotent_and_matched_at_once(runner, session, tmp_path):
    path = write_jsonl(tmp_path / "paper.jsonl", PAPER)
    first = runner.invoke(cli, ["proposals", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "added 2, updated 0, unchanged 0" in first.output
    proposals = session.exec(select(Proposal).order_by(Proposal.id)).all()
    assert proposals[0].external_ref == "paper-1"
    assert proposals[0].collaboration_type == "co_hosting"
    assert proposals[0].budget_thousand_yen == 300
    assert proposals[1].collaboration_type == "other"
    assert session.exec(select(func.count()).select_from(Suggestion).where(Suggestion.proposal_id == proposals[0].id)).one() > 0
    second = runner.invoke(cli, ["proposals", "import", str(path)])
    assert "added 0, updated 0, unchanged 2" in second.output
    changed = [dict(PAPER[0], body="自治会と防災講座と避難訓練、炊き出し訓練を開きたい。"), PAPER[1]]
    third = runner.invoke(cli, ["proposals", "import", str(write_jsonl(tmp_path / "p2.jsonl", changed))])
    assert "added 0, updated 1, unchanged 1" in third.output
    assert session.exec(select(func.count()).select_from(Proposal)).one() == 2


def test_proposals_import_csv_all_or_nothing(runner, session, tmp_path):
    path = tmp_path / "paper.csv"
    path.write_bytes(
        "title,body,collaboration_type,budget_thousand_yen\r\n"
        "防災講座,地域の防災講座を開きたい,委託,100\r\n"
        ",本文だけ,,\r\n"
        "サロン,親子サロン,寄付,\r\n"
        "清掃,川の清掃,補助,たくさん\r\n".encode("cp932")
    )
    result = runner.invoke(cli, ["proposals", "import", str(path)])
    assert result.exit_code == 1
    for line in ("line 3", "line 4", "line 5"):
        assert line in result.output
    assert "line 2" not in result.output
    assert session.exec(select(func.count()).select_from(Proposal)).one() == 0
    skipped = runner.invoke(cli, ["proposals", "import", str(path), "--skip-invalid"])
    assert skipped.exit_code == 0, skipped.output
    assert "added 1" in skipped.output and "skipped 3" in skipped.output


def test_unreadable_file_is_one_line(runner, tmp_path):
    result = runner.invoke(cli, ["programs", "import", str(tmp_path / "missing.csv")])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: missing.csv: file not found"


def test_proposals_import_names_a_title_over_the_limit_and_stores_nothing(runner, session, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(
        "id,title,body,budget_thousand_yen\n"
        "p-1,防災講座,地域の防災講座を開きたい,100\n"
        f"p-2,{'長' * 600},川の清掃をしたい,\n"
        "p-3,サロン,親子サロンを開きたい,\"１２３,４５６,７８９\"\n",
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["proposals", "import", str(path)])
    assert result.exit_code == 1
    assert "line 3: title is longer than 100 characters" in result.output
    assert "line 4: budget_thousand_yen 123456789 is not between 0 and 100,000,000" in result.output
    assert "line 2" not in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert session.exec(select(func.count()).select_from(Proposal)).one() == 0


def test_exports_never_write_a_formula_and_import_back_unchanged(runner, tmp_path):
    from openpyxl import load_workbook

    # Written for testing: a hostile program name and a budget cell starting with "-".
    hostile = ["R08-09", "2026", "施策", "目的", '=HYPERLINK("http://x","y")', "@SUM(A1)", "危機管理課", "-"]
    assert runner.invoke(cli, ["programs", "import", str(write_csv(tmp_path / "h.csv", [hostile]))]).exit_code == 0
    csv_path, xlsx_path = tmp_path / "out.csv", tmp_path / "out.xlsx"
    assert runner.invoke(cli, ["programs", "export", "--format", "csv", "-o", str(csv_path)]).exit_code == 0
    assert runner.invoke(cli, ["programs", "export", "--format", "xlsx", "-o", str(xlsx_path)]).exit_code == 0
    text = csv_path.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'@SUM(A1)" in text and ',=HYPERLINK' not in text
    sheet = load_workbook(xlsx_path).active
    cells = [c for row in sheet.iter_rows() for c in row if "HYPERLINK" in str(c.value)]
    assert cells and all(c.data_type == "s" and str(c.value).startswith("'") for c in cells)
    for path in (csv_path, xlsx_path):
        again = runner.invoke(cli, ["programs", "import", str(path)])
        assert again.exit_code == 0 and "added 0, updated 0" in again.output, again.output
