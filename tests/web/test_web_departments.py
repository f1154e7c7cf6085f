"""The coordinator's department pages (/departments): the list with its
upload, the export, the edit form, and the department's own page; on
SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook
from sqlmodel import select

from models.tables import AuditEvent
from models.workflow import all_departments, department_by_name
from models.workflow_tables import Department

HEADER = "担当課,部,メールアドレス,所掌事務"
ROWS = [
    "市民協働課,市民生活部,kyodo@city.example.jp,市民活動の支援",
    '新設課,企画部,"a@city.example.jp, b@city.example.jp",',
]


def _csv(lines: list[str], encoding: str = "utf-8") -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def _upload(client, content: bytes, filename: str):
    return client.post(
        "/departments/import", data={"file": (io.BytesIO(content), filename)}, content_type="multipart/form-data"
    )


def _department(session, name: str) -> Department | None:
    session.expire_all()
    return department_by_name(session=session, name=name)


def _events(session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/departments"), ("get", "/departments/export.csv"), ("get", "/departments/市民協働課/edit"),
     ("post", "/departments/市民協働課/edit"), ("post", "/departments/import")],
)
def test_every_department_page_needs_a_login(client, session, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert _events(session, "department.update") == [] and _events(session, "departments.import") == []


def test_the_list_shows_every_department_with_its_programs(logged_in, session):
    html = logged_in.get("/departments").data.decode()
    assert '<a href="/departments">担当課</a>' in html  # the console's navigation
    rows = re.findall(r'<tr data-testid="department-row">(.*?)</tr>', html, re.S)
    assert len(rows) == len(all_departments(session=session))
    kyodo = next(r for r in rows if ">市民協働課</a>" in r)
    assert "未登録" in kyodo and "有効" in kyodo and "/departments/%E5%B8%82%E6%B0%91%E5%8D%94%E5%83%8D%E8%AA%B2/edit" in kyodo
    count = int(re.search(r"<td>(\d+)件</td>", kyodo).group(1))
    page = logged_in.get("/departments/市民協働課").data.decode()
    assert f"担当事業（{count}件）" in page and count > 1  # the count is that of the department's page


def test_cp932_upload_adds_and_updates_and_names_the_counts(logged_in, session):
    response = _upload(logged_in, _csv([HEADER, *ROWS], "cp932"), "担当課一覧.csv")
    assert response.status_code == 302 and response.headers["Location"].endswith("/departments")
    listing = logged_in.get("/departments").data.decode()
    assert "担当課一覧.csv：担当課を取り込みました：追加 1件、更新 1件、変更なし 0件。" in listing
    assert "kyodo@city.example.jp" in listing and "a@city.example.jp、b@city.example.jp" in listing
    assert _department(session, "新設課").parent == "企画部"
    [event] = _events(session, "departments.import")
    assert event.actor == "coord" and event.detail["added"] == 1 and event.detail["source_file"] == "担当課一覧.csv"
    page = logged_in.get("/departments/新設課")  # a department without programs has its page
    assert page.status_code == 200 and "この担当課の事業は事業一覧にありません" in page.data.decode()


def test_xlsx_upload(logged_in, session):
    book = Workbook()
    book.active.append(["name", "parent", "emails", "duties"])
    book.active.append(["環境課", "環境部", "eco@city.example.jp", "環境美化"])
    data = io.BytesIO()
    book.save(data)
    assert _upload(logged_in, data.getvalue(), "d.xlsx").status_code == 302
    assert _department(session, "環境課").emails == "eco@city.example.jp"


def test_a_bad_upload_stores_nothing_and_lists_every_bad_line_in_japanese(logged_in, session):
    bad = _csv([HEADER, ROWS[1], "市民協働課,,kyodo@city,", ",企画部,,", "新設課,,,"])
    response = _upload(logged_in, bad, "bad.csv")
    html = response.data.decode()
    assert response.status_code == 400
    assert 'id="file-error"' in html and "3件の問題があるため、何も取り込んでいません" in html
    assert re.findall(r"<li>(\d+行目：[^<]+)</li>", html) == [
        "3行目：メールアドレス「kyodo@city」の形式が正しくありません",
        "4行目：担当課が空です",
        "5行目：担当課「新設課」が2行目と重複しています",
    ]
    assert _department(session, "新設課") is None and _department(session, "市民協働課").emails == ""
    assert _events(session, "departments.import") == []
    no_column = _upload(logged_in, _csv(["部", "市民生活部"]), "x.csv")
    assert no_column.status_code == 400 and "読み込めませんでした：「担当課」の列がありません。" in no_column.data.decode()
    wrong_type = _upload(logged_in, b"x", "x.pdf")
    assert wrong_type.status_code == 400 and "CSV・XLSX・JSONL のファイルを選んでください。" in wrong_type.data.decode()


def test_the_upload_may_exceed_the_general_body_limit(app, logged_in):
    app.config["MAX_CONTENT_LENGTH"] = 1_000
    big = _csv([HEADER, *[f"課{n},部{n},k{n}@city.example.jp,所掌事務{n}" for n in range(80)]])
    assert len(big) > 1_000
    assert _upload(logged_in, big, "big.csv").status_code == 302
    app.config["MAX_UPLOAD_LENGTH"] = 1_000
    assert _upload(logged_in, big, "big.csv").status_code == 413


def test_edit_with_a_bad_address_shows_the_error_beside_the_field_and_stores_nothing(logged_in, session):
    form = logged_in.get("/departments/市民協働課/edit")
    assert form.status_code == 200 and 'name="emails"' in form.data.decode()
    data = {"parent": "市民生活部", "emails": "kyodo@city.example.jp, 担当者", "duties": "市民活動の支援", "active": "y"}
    response = logged_in.post("/departments/市民協働課/edit", data=data)
    html = response.data.decode()
    assert response.status_code == 400
    error = re.search(r'<p class="error" id="emails-error">([^<]+)</p>', html)
    assert error and error.group(1) == "メールアドレス「担当者」の形式が正しくありません。"
    assert 'aria-invalid="true"' in html and 'value="kyodo@city.example.jp, 担当者"' in html
    found = _department(session, "市民協働課")
    assert (found.parent, found.emails, found.duties) == ("", "", "")
    assert _events(session, "department.update") == []


def test_edit_saves_and_the_department_page_shows_it(logged_in, session):
    data = {"parent": "市民生活部", "emails": "a@city.example.jp、b@city.example.jp", "duties": "市民活動の支援"}
    response = logged_in.post("/departments/市民協働課/edit", data=data)  # 有効 unchecked
    assert response.status_code == 302
    assert response.headers["Location"] == "/departments/%E5%B8%82%E6%B0%91%E5%8D%94%E5%83%8D%E8%AA%B2"
    found = _department(session, "市民協働課")
    assert (found.parent, found.emails, found.duties, found.active) == (
        "市民生活部", "a@city.example.jp, b@city.example.jp", "市民活動の支援", False,
    )
    page = logged_in.get(response.headers["Location"]).data.decode()
    assert "担当課「市民協働課」を保存しました。" in page
    record = re.search(r'<dl class="meta" data-testid="department-record">(.*?)</dl>', page, re.S).group(1)
    assert "市民生活部" in record and "a@city.example.jp、b@city.example.jp" in record and "市民活動の支援" in record
    assert "無効" in record and "/departments/%E5%B8%82%E6%B0%91%E5%8D%94%E5%83%8D%E8%AA%B2/edit" in page
    [event] = _events(session, "department.update")
    assert event.actor == "coord" and event.detail["changes"]["active"] == {"from": True, "to": False}
    again = logged_in.post("/departments/市民協働課/edit", data=data)
    assert again.status_code == 302 and len(_events(session, "department.update")) == 1
    assert "変更はありませんでした。" in logged_in.get(again.headers["Location"]).data.decode()
    assert logged_in.get("/departments/存在しない課/edit").status_code == 404
    assert logged_in.get("/departments/存在しない課").status_code == 404


def test_export_is_excel_csv_that_uploads_back_unchanged(logged_in, session):
    logged_in.post("/departments/市民協働課/edit", data={"emails": "a@city.example.jp", "duties": "-会議の運営", "active": "y"})
    response = logged_in.get("/departments/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == "attachment; filename=departments.csv"
    assert response.data.startswith(b"\xef\xbb\xbf")
    text = response.data.decode("utf-8-sig")
    assert text.splitlines()[0] == "担当課,部,メールアドレス,所掌事務,有効"
    assert "市民協働課,,a@city.example.jp,'-会議の運営,はい" in text.splitlines()
    count = len(all_departments(session=session))
    back = _upload(logged_in, response.data, "departments.csv")
    assert back.status_code == 302
    assert f"変更なし {count}件" in logged_in.get("/departments").data.decode()
    assert _department(session, "市民協働課").duties == "-会議の運営"
