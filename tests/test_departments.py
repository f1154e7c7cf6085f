"""Departments (担当課) as records: seeded at first start, imported from the
office's file all or nothing (CSV UTF-8 / cp932, XLSX), edited, exported and
imported back unchanged, and added by a catalogue import; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import select

from corpus import InvalidRowsError, split_departments
from models.departments import load_departments
from models.tables import AuditEvent, Program
from models.workflow import all_departments, department_by_name
from models.workflow_tables import Department, DepartmentCreate
from office.commands import Actor
from office.departments import import_departments, update_department
from web.cli import cli

HEADER = ["担当課", "部", "メールアドレス", "所掌事務"]
ROWS = [
    ["市民協働課", "市民生活部", "kyodo@city.example.jp", "市民活動の支援"],
    ["新設課", "企画部", "a@city.example.jp, b@city.example.jp", ""],
]


def write_csv(path, header, rows, encoding="utf-8"):
    lines = [",".join(header)] + [",".join(f'"{c}"' if "," in c else c for c in row) for row in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def write_xlsx(path, header, rows):
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def events(session, action):
    session.expire_all()
    return session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def fresh(session, name) -> Department:
    session.expire_all()
    found = department_by_name(session=session, name=name)
    assert found is not None
    return found


def test_every_department_the_seed_catalogue_names_exists_from_the_first_start(session):
    cells = session.exec(select(Program.department)).all()
    named = {n for c in cells for n in split_departments(c)}
    departments = all_departments(session=session)
    assert {d.name for d in departments} == named and len(named) > 5
    assert all(d.emails == "" and d.active for d in departments)
    assert {"市民協働課", "環境課", "防災安全課"} <= named  # from joint cells such as "市民協働課 環境課"


def test_cp932_csv_adds_and_updates_by_name_and_is_idempotent(runner, session, tmp_path):
    path = write_csv(tmp_path / "担当課.csv", HEADER, ROWS, encoding="cp932")
    before = len(all_departments(session=session))
    first = runner.invoke(cli, ["departments", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "added 1, updated 1, unchanged 0" in first.stdout
    kyodo = fresh(session, "市民協働課")
    assert (kyodo.parent, kyodo.emails, kyodo.duties) == ("市民生活部", "kyodo@city.example.jp", "市民活動の支援")
    assert fresh(session, "新設課").email_list == ["a@city.example.jp", "b@city.example.jp"]
    assert len(all_departments(session=session)) == before + 1  # nothing deleted
    again = runner.invoke(cli, ["departments", "import", str(path)])
    assert "added 0, updated 0, unchanged 2" in again.stdout
    recorded = events(session, "departments.import")
    assert [(e.detail["added"], e.detail["updated"], e.detail["unchanged"]) for e in recorded] == [(1, 1, 0), (0, 0, 2)]
    assert recorded[0].actor == "cli" and recorded[0].detail["source_file"] == "担当課.csv"


def test_xlsx_with_english_headers_updates_only_its_columns(runner, session, tmp_path):
    update_department(
        session=session, department=fresh(session, "環境課"),
        data=DepartmentCreate(name="環境課", parent="環境部", duties="環境美化", emails="kankyo@city.example.jp"),
    )
    path = write_xlsx(tmp_path / "d.xlsx", ["name", "emails", "active"], [["環境課", "eco@city.example.jp", "いいえ"]])
    result = runner.invoke(cli, ["departments", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "added 0, updated 1, unchanged 0" in result.stdout
    found = fresh(session, "環境課")
    assert (found.emails, found.active) == ("eco@city.example.jp", False)
    assert (found.parent, found.duties) == ("環境部", "環境美化")  # columns the file does not have stay


def test_a_bad_file_imports_nothing_and_names_every_bad_line(runner, session, tmp_path):
    rows = [
        ["新設課", "企画部", "a@city.example.jp", ""],  # line 2: good
        ["市民協働課", "", "kyodo@city", ""],  # line 3: no domain
        ["", "企画部", "", ""],  # line 4: no name
        ["新設課", "", "", ""],  # line 5: repeats line 2
        ["道路 河川課", "", "", ""],  # line 6: no program's cell could name it
    ]
    path = write_csv(tmp_path / "bad.csv", HEADER, rows)
    result = runner.invoke(cli, ["departments", "import", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Error: bad.csv: 4 invalid rows, nothing imported"
    assert lines[1] == "line 3: メールアドレス: kyodo@city is not an e-mail address"
    assert lines[2].startswith("line 4: 担当課") and "empty" in lines[2]
    assert lines[3].startswith("line 5: 担当課 '新設課' repeats line 2")
    assert lines[4].startswith("line 6: 担当課 '道路 河川課'")
    assert department_by_name(session=session, name="新設課") is None
    assert events(session, "departments.import") == []
    with pytest.raises(InvalidRowsError) as raised:
        load_departments(path)
    assert [e.ja for e in raised.value.errors][:2] == ["メールアドレス「kyodo@city」の形式が正しくありません", "担当課が空です"]


def test_a_file_without_the_name_column_is_refused(runner, tmp_path):
    path = write_csv(tmp_path / "x.csv", ["部", "メールアドレス"], [["市民生活部", "a@city.example.jp"]])
    result = runner.invoke(cli, ["departments", "import", str(path)])
    assert result.exit_code == 1
    assert "missing required column 担当課" in result.stderr


def test_update_department_is_one_event_and_nothing_when_unchanged(session):
    department = fresh(session, "市民協働課")
    data = DepartmentCreate(name="市民協働課", parent="市民生活部", emails="a@city.example.jp、b@city.example.jp",
                            duties="市民活動の支援", active=True)
    assert update_department(session=session, department=department, data=data, actor=Actor(name="支援室 山田"))
    found = fresh(session, "市民協働課")
    assert found.emails == "a@city.example.jp, b@city.example.jp" and found.parent == "市民生活部"
    assert found.updated_at > found.created_at
    assert not update_department(session=session, department=found, data=data)
    [event] = events(session, "department.update")
    assert event.actor == "支援室 山田" and event.entity_id == str(found.id)
    assert event.detail["changes"]["parent"] == {"from": "", "to": "市民生活部"}
    with pytest.raises(ValueError, match="not an e-mail address"):
        DepartmentCreate(name="市民協働課", emails="a@city.example.jp, nobody")


def test_import_departments_command_takes_validated_records(session):
    report = import_departments(
        session=session, records=[DepartmentCreate(name="新設課", emails="x@city.example.jp")], source_file="api",
    )
    assert report.counts() == {"added": 1, "updated": 0, "unchanged": 0}
    assert fresh(session, "新設課").email_list == ["x@city.example.jp"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_imports_back_unchanged_and_is_safe_for_excel(runner, session, tmp_path, fmt):
    update_department(
        session=session, department=fresh(session, "市民協働課"),
        data=DepartmentCreate(name="市民協働課", parent="市民生活部", emails="a@city.example.jp, b@city.example.jp",
                              duties="=HYPERLINK(\"http://x\")\n市民活動の支援", active=False),
    )
    output = tmp_path / f"departments.{fmt}"
    result = runner.invoke(cli, ["departments", "export", "--format", fmt, "-o", str(output)])
    assert result.exit_code == 0, result.output
    count = len(all_departments(session=session))
    assert f"{count} departments" in result.stderr
    if fmt == "csv":
        data = output.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        text = data.decode("utf-8-sig")
        assert text.splitlines()[0] == "担当課,部,メールアドレス,所掌事務,有効"
        assert "市民協働課,市民生活部,\"a@city.example.jp, b@city.example.jp\",\"'=HYPERLINK" in text
    else:
        cells = {row[0]: row for row in load_workbook(output).worksheets[0].iter_rows(values_only=True)}
        assert cells["市民協働課"][3].startswith("'=HYPERLINK") and cells["市民協働課"][4] == "いいえ"
    back = runner.invoke(cli, ["departments", "import", str(output)])
    assert back.exit_code == 0, back.output
    assert f"added 0, updated 0, unchanged {count}" in back.stdout
    found = fresh(session, "市民協働課")
    assert found.duties.startswith("=HYPERLINK") and not found.active


def test_export_to_standard_output_and_xlsx_needs_a_file(runner):
    result = runner.invoke(cli, ["departments", "export"])
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and lines[0] == "担当課,部,メールアドレス,所掌事務,有効"
    assert "市民協働課,,,,はい" in lines
    refused = runner.invoke(cli, ["departments", "export", "--format", "xlsx"])
    assert refused.exit_code == 1 and "needs -o FILE" in refused.stderr


def test_a_catalogue_import_adds_the_departments_it_names(runner, session, tmp_path):
    header = ["id", "年度", "施策名", "目的", "事業名", "取り組み内容", "担当課"]
    rows = [["R08-01", "2026", "環境美化", "まちの環境を守る", "河川清掃", "市民参加の河川清掃を行う", "河川課、環境課"]]
    result = runner.invoke(cli, ["programs", "import", str(write_csv(tmp_path / "c.csv", header, rows))])
    assert result.exit_code == 0, result.output
    added = fresh(session, "河川課")
    assert added.emails == "" and added.active
    assert len([d for d in all_departments(session=session) if d.name == "環境課"]) == 1
