"""The coordinator imports the city's program list (or the keywords) from a
spreadsheet on /programs/import, and downloads the catalogue back; on SQLite
and PostgreSQL, CSRF on for the page itself."""

from __future__ import annotations

import io
import re

from openpyxl import Workbook
from sqlmodel import select

from models.tables import AuditEvent, Program

HEADER = "id,年度,施策名,目的,事業名,取り組み内容,担当課"
ROWS = [
    "R08-01,2026,防災のまちづくり,市民の防災意識を高める,防災講座の開催,地域で防災講座と避難訓練を行う,危機管理課",
    "R08-02,2026,子育て支援,子育て家庭を地域で支える,親子サロン,子育て中の親子の交流の場をつくる,子育て支援課",
]


def _upload(client, content: bytes, filename: str, kind: str = "catalogue", fiscal_year: str = ""):
    return client.post(
        "/programs/import",
        data={"kind": kind, "fiscal_year": fiscal_year, "file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


def _csv(lines: list[str], encoding: str = "utf-8") -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def test_cp932_catalogue_upload_imports_and_is_idempotent(logged_in, session):
    page = logged_in.get("/programs/import").data.decode()
    assert 'enctype="multipart/form-data"' in page and "ファイル（CSV・Excel・JSONL）" in page
    first = _upload(logged_in, _csv([HEADER, *ROWS], "cp932"), "令和8年度協働事業.csv")
    assert first.status_code == 302 and first.headers["Location"].endswith("/programs")
    listing = logged_in.get("/programs").data.decode()
    assert "事業一覧を取り込みました（2026年度）：追加 2件、更新 0件、変更なし 0件" in listing
    names = session.exec(select(Program.name).where(Program.fiscal_year == 2026).order_by(Program.external_id)).all()
    assert names == ["防災講座の開催", "親子サロン"]
    assert "過年度" in listing  # the bundled 2008 catalogue is no longer the newest
    again = _upload(logged_in, _csv([HEADER, *ROWS], "cp932"), "令和8年度協働事業.csv")
    assert again.status_code == 302
    assert "追加 0件、更新 0件、変更なし 2件" in logged_in.get("/programs").data.decode()
    event = session.exec(
        select(AuditEvent).where(AuditEvent.action == "programs.import").order_by(AuditEvent.id.desc())
    ).first()
    assert event.actor == "coord" and event.detail["source_file"] == "令和8年度協働事業.csv"


def test_xlsx_upload_with_the_year_given_on_the_form(logged_in, session):
    book = Workbook()
    sheet = book.active
    sheet.append(["施策名", "目的", "事業名", "取り組み内容", "担当課"])
    sheet.append(["環境美化", "まちの環境を守る", "河川清掃", "市民参加の河川清掃を行う", "環境課"])
    data = io.BytesIO()
    book.save(data)
    from models.clock import fiscal_year, utcnow

    # No 年度 column and none on the form: the current 年度, and the page says so.
    defaulted = _upload(logged_in, data.getvalue(), "list.xlsx")
    assert defaulted.status_code == 302
    assert "年度の列がない行は" in logged_in.get("/programs").data.decode()
    assert session.exec(select(Program).where(Program.name == "河川清掃")).one().fiscal_year == fiscal_year(utcnow())
    done = _upload(logged_in, data.getvalue(), "list.xlsx", fiscal_year="2027")
    assert done.status_code == 302
    assert {p.fiscal_year for p in session.exec(select(Program).where(Program.name == "河川清掃"))} >= {2027}


def test_a_bad_file_imports_nothing_and_names_every_bad_line(logged_in, session):
    bad = _csv([HEADER, ROWS[0], "R08-02,2026,子育て支援,,,,子育て支援課", "R08-01,2026,x,y,z,w,v"])
    response = _upload(logged_in, bad, "bad.csv")
    html = response.data.decode()
    assert response.status_code == 400
    assert 'id="file-error"' in html and "2件の問題があるため、何も取り込んでいません" in html
    problems = re.findall(r"<li>(\d+行目：[^<]+)</li>", html)
    assert problems == ["3行目：事業名が空です", "4行目：id「R08-01」が2行目と重複しています"]
    assert session.exec(select(Program).where(Program.fiscal_year == 2026)).all() == []
    undecodable = _upload(logged_in, b"\x80\xff\xfe\x81\x00", "list.csv")
    assert undecodable.status_code == 400
    assert "読み込めませんでした：文字コードが UTF-8 でも Shift_JIS でもないため読めません" in undecodable.data.decode()
    wrong_type = _upload(logged_in, b"%PDF-1.4", "list.pdf")
    assert wrong_type.status_code == 400 and "CSV・XLSX・JSONL のファイルを選んでください" in wrong_type.data.decode()
    nothing = logged_in.post("/programs/import", data={"kind": "catalogue"}, content_type="multipart/form-data")
    assert nothing.status_code == 400 and "ファイルを選んでください。" in nothing.data.decode()


def test_keywords_upload_is_all_or_nothing(logged_in, session):
    typo = _upload(logged_in, _csv(["id,キーワード", "H20-01,まちの憲法", "H20-99,存在しない"]), "k.csv", kind="keywords")
    assert typo.status_code == 400 and "H20-99" in typo.data.decode()
    session.expire_all()
    assert session.exec(select(Program.keywords).where(Program.external_id == "H20-01")).one() == ""
    done = _upload(logged_in, _csv(["id,キーワード", "H20-01,まちの憲法"]), "k.csv", kind="keywords")
    assert done.status_code == 302
    assert "キーワードを取り込みました（2008年度）：更新 1件" in logged_in.get("/programs").data.decode()
    session.expire_all()
    assert session.exec(select(Program.keywords).where(Program.external_id == "H20-01")).one() == "まちの憲法"


def test_catalogue_download_opens_in_excel_and_uploads_back(logged_in):
    exported = logged_in.get("/programs/export.csv")
    assert exported.status_code == 200 and exported.content_type.startswith("text/csv")
    assert exported.data.startswith(b"\xef\xbb\xbfid,")
    again = _upload(logged_in, exported.data, "programs.csv")
    assert again.status_code == 302
    assert "追加 0件、更新 0件、変更なし 30件" in logged_in.get("/programs").data.decode()


def test_import_needs_a_login(client):
    response = _upload(client, _csv([HEADER, *ROWS]), "a.csv")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/programs/export.csv").status_code == 302


def test_the_upload_may_exceed_the_general_body_limit(app, logged_in):
    app.config["MAX_CONTENT_LENGTH"] = 1_000
    big = _csv([HEADER, *ROWS, *[f"R08-{n:03},2026,施策{n},目的{n},事業{n},内容{n},課{n}" for n in range(3, 80)]])
    assert len(big) > 1_000
    assert _upload(logged_in, big, "big.csv").status_code == 302
    app.config["MAX_UPLOAD_LENGTH"] = 1_000
    assert _upload(logged_in, big, "big.csv").status_code == 413
    assert logged_in.post("/programs/1", data={"keywords": "x" * 1_200}).status_code == 413


def test_the_year_on_the_form_reads_reiwa_and_refuses_a_typo(logged_in, session):
    # Written for testing: one program without a 年度 column.
    content = "施策名,目的,事業名,取り組み内容,担当課\r\n環境美化,まちの環境を守る,水辺の清掃,市民参加の清掃,環境課\r\n".encode()
    assert _upload(logged_in, content, "r9.csv", fiscal_year="令和9").status_code == 302
    assert session.exec(select(Program).where(Program.name == "水辺の清掃")).one().fiscal_year == 2027
    refused = _upload(logged_in, content, "typo.csv", fiscal_year="3000")
    assert refused.status_code == 400 and "2000年度から2100年度の間" in refused.data.decode()
