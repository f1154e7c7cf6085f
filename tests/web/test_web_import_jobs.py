"""The catalogue import as a background job (web.programs, web.catalogue_import):
a file over IMPORT_BACKGROUND_BYTES is kept in the instance folder and queued,
its page shows the progress and then the result or every bad line; staged
programs are seen nowhere until the import is published; programs without an
id get the readable id of their year; 今すぐ再マッチ is in the audit trail.
On SQLite and PostgreSQL, the queue being the app's default (jobs.sqlite3 in
the test's instance folder)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from sqlmodel import Session, col, select

from corpus import ProgramRecord
from models.import_tables import FAILED, PUBLISHED, QUEUED
from models.locks import acquire
from models.program_imports import begin_staging, open_import, stage_programs
from models.tables import AuditEvent, Program, ProgramImport
from office.catalogue import IMPORT_LOCK, publish
from web.jobs import get_jobs, queued_rematch

HEADER = "id,年度,施策名,目的,事業名,取り組み内容,担当課"
ROWS = [
    "R08-01,2026,防災のまちづくり,市民の防災意識を高める,防災講座の開催,地域で防災講座と避難訓練を行う,危機管理課",
    "R08-02,2026,子育て支援,子育て家庭を地域で支える,親子サロン,子育て中の親子の交流の場をつくる,子育て支援課",
]


def _csv(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def _upload(client, content: bytes, filename: str = "r8.csv", fiscal_year: str = ""):
    return client.post("/programs/import", content_type="multipart/form-data",
                       data={"kind": "catalogue", "fiscal_year": fiscal_year, "file": (io.BytesIO(content), filename)})


def _run_queued(app) -> None:
    """What the worker does: take the queued task and run it."""
    huey = get_jobs(app).huey
    task = huey.dequeue()
    assert task is not None and task.name == "import_programs"
    huey.execute(task)


def test_a_large_file_is_queued_and_its_page_follows_it_to_the_result(app, logged_in, session):
    app.config["IMPORT_BACKGROUND_BYTES"] = 100  # every file of this test is "large"
    queued = _upload(logged_in, _csv([HEADER, *ROWS]))
    assert queued.status_code == 302
    page_path = queued.headers["Location"]
    assert re.fullmatch(r".*/programs/imports/\d+", page_path)
    waiting = logged_in.get(page_path)
    html = waiting.data.decode()
    assert waiting.headers["Refresh"] == "3" and "順番を待っています" in html
    assert "kyodo worker" in html  # no worker has run yet: the page says the import waits for one
    assert [p.name for p in (Path(app.instance_path) / "imports").iterdir()] == [page_path.rsplit("/", 1)[1] + ".csv"]
    assert session.exec(select(Program).where(col(Program.fiscal_year) == 2026)).all() == []
    _run_queued(app)
    done = logged_in.get(page_path)
    html = done.data.decode()
    assert "Refresh" not in done.headers and 'data-testid="import-state">完了' in html
    assert "事業一覧を取り込みました（2026年度）：追加 2件、更新 0件、変更なし 0件" in html
    assert "前年度までの 30件は過年度になりました" in html
    session.expire_all()
    assert [p.name for p in session.exec(select(Program).where(col(Program.fiscal_year) == 2026)
                                         .order_by(col(Program.external_id)))] == ["防災講座の開催", "親子サロン"]
    assert list((Path(app.instance_path) / "imports").iterdir()) == []
    assert queued_rematch(app)["reason"] == "catalogue r8.csv"
    assert page_path.rsplit("/", 1)[1] in logged_in.get("/programs/import").data.decode()  # 最近の取り込み


def test_a_bad_file_in_the_background_names_every_bad_line_and_imports_nothing(app, logged_in, session):
    app.config["IMPORT_BACKGROUND_BYTES"] = 100
    bad = _csv([HEADER, ROWS[0], "R08-02,2026,子育て支援,,,,子育て支援課", "R08-01,2026,x,y,z,w,v"])
    page_path = _upload(logged_in, bad, "bad.csv").headers["Location"]
    _run_queued(app)
    html = logged_in.get(page_path).data.decode()
    assert "2件の問題があるため、何も取り込んでいません" in html and "取り込んでいません" in html
    assert re.findall(r"<li>(\d+行目：[^<]+)</li>", html) == ["3行目：事業名が空です", "4行目：id「R08-01」が2行目と重複しています"]
    assert session.exec(select(Program).where(col(Program.fiscal_year) == 2026)).all() == []
    assert queued_rematch(app) is None


def test_an_upload_while_another_import_runs_waits_for_it(app, logged_in, engine, session):
    lock = acquire(engine, IMPORT_LOCK)  # another import is running
    try:
        response = _upload(logged_in, _csv([HEADER, *ROWS]))  # small: it would run at once
        assert response.status_code == 302 and "/programs/imports/" in response.headers["Location"]
        batch = session.exec(select(ProgramImport).order_by(col(ProgramImport.id).desc())).first()
        assert batch.status == QUEUED
    finally:
        lock.release()
    _run_queued(app)
    session.expire_all()
    assert session.get(ProgramImport, batch.id).status == PUBLISHED


def test_a_queue_down_refuses_the_upload_with_a_message(app, logged_in, session):
    from web.jobs import install_jobs

    app.config["IMPORT_BACKGROUND_BYTES"] = 100
    install_jobs(app, url="redis://127.0.0.1:1/0")  # nothing listens there
    response = _upload(logged_in, _csv([HEADER, *ROWS]))
    assert response.status_code == 503 and "ジョブキューに接続できません" in response.data.decode()
    batch = session.exec(select(ProgramImport).order_by(col(ProgramImport.id).desc())).first()
    assert batch.status == FAILED and list((Path(app.instance_path) / "imports").iterdir()) == []


def _record(external_id: str, name: str, policy: str = "地域の防災") -> ProgramRecord:
    return ProgramRecord(id=external_id, name=name, purpose="地域の防災力を高める", activities="防災訓練を行う",
                         department="危機管理課", policy=policy, fiscal_year=2026)


def test_staged_programs_are_seen_nowhere_until_published(app, logged_in, engine, auth_headers):
    bundled = 30
    changed = ProgramRecord(id="H20-01", name="協働のまちづくり条例の見直し", purpose="条例を見直す", activities="市民と検討する",
                            fiscal_year=2008)
    records = [_record("STAGED-1", "避難所の運営訓練"), _record("STAGED-2", "防災マップの作成"), changed]
    with Session(engine, expire_on_commit=False) as writer:
        batch = open_import(session=writer, source_file="staged.csv")
        begin_staging(session=writer, batch=batch, total=len(records))
        stage_programs(session=writer, batch=batch, records=records, newest=2026)
        writer.commit()
        staged_id = writer.exec(select(Program.id).where(col(Program.external_id) == "STAGED-1")
                                .execution_options(include_staged=True)).one()
        with Session(engine) as reader:
            assert reader.get(Program, staged_id) is None
            assert len(reader.exec(select(Program)).all()) == bundled
            assert reader.exec(select(Program).where(col(Program.external_id) == "H20-01")).one().name != changed.name
        assert logged_in.get(f"/programs/{staged_id}").status_code == 404
        assert "避難所の運営訓練" not in logged_in.get("/programs?q=避難所").data.decode()
        assert "STAGED-1" not in logged_in.get("/programs/export.csv").data.decode("utf-8-sig")
        assert "避難所の運営訓練" not in logged_in.get("/departments/危機管理課").data.decode()
        assert logged_in.get(f"/api/v1/programs/{staged_id}", headers=auth_headers).status_code == 404
        listed = logged_in.get("/api/v1/programs?per_page=100", headers=auth_headers).get_json()
        assert "STAGED-1" not in str(listed)
        publish(session=writer, batch=batch, records=records, newest=2026)
    with Session(engine) as reader:
        assert reader.get(Program, staged_id).active is True
        assert reader.exec(select(Program).where(col(Program.external_id) == "H20-01")).one().name == changed.name
        assert not reader.exec(select(Program).where(col(Program.fiscal_year) == 2008)).first().active
        event = reader.exec(select(AuditEvent).where(col(AuditEvent.action) == "programs.import")
                            .order_by(col(AuditEvent.id).desc())).first()
        assert event.detail["import_id"] == batch.id and event.detail["added"] == 2 and event.detail["updated"] == 1
    assert "避難所の運営訓練" in logged_in.get("/programs?q=避難所").data.decode()


def test_programs_without_an_id_get_the_readable_id_of_their_year(app, logged_in, session):
    header = "年度,施策名,目的,事業名,取り組み内容,担当課"
    rows = ["2026,防災のまちづくり,市民の防災意識を高める,防災講座の開催,地域で防災講座を行う,危機管理課",
            "2026,子育て支援,子育て家庭を支える,親子サロン,親子の交流の場をつくる,子育て支援課"]
    assert _upload(logged_in, _csv([header, *rows])).status_code == 302

    def ids() -> dict[str, str]:
        session.expire_all()
        found = session.exec(select(Program).where(col(Program.fiscal_year) == 2026))
        return {p.name: p.external_id for p in found}

    assert ids() == {"防災講座の開催": "R8-001", "親子サロン": "R8-002"}
    assert _upload(logged_in, _csv([header, *rows])).status_code == 302
    assert "追加 0件、更新 0件、変更なし 2件" in logged_in.get("/programs").data.decode()
    # A file naming R8-003 itself: a row without an id takes the number after it.
    mixed = ["id," + header, *["," + r for r in rows], ",2026,環境,まちの環境を守る,河川清掃,市民と河川を清掃する,環境課",
             "R8-003,2026,環境,まちの緑を守る,植樹祭,市民と木を植える,環境課"]
    assert _upload(logged_in, _csv(mixed)).status_code == 302
    assert ids() == {"防災講座の開催": "R8-001", "親子サロン": "R8-002", "植樹祭": "R8-003", "河川清掃": "R8-004"}
    # The next year: new numbers, and the coordinator's キーワード of the same program carried over.
    program = session.exec(select(Program).where(col(Program.external_id) == "R8-002")).one()
    logged_in.post(f"/programs/{program.id}", data={"keywords": "子ども\n親子カフェ"})
    assert _upload(logged_in, _csv([header, rows[1].replace("2026", "2027", 1)])).status_code == 302
    session.expire_all()
    next_year = session.exec(select(Program).where(col(Program.fiscal_year) == 2027)).one()
    assert next_year.external_id == "R9-001" and next_year.keywords == "子ども\n親子カフェ"


def test_rematch_now_is_in_the_audit_trail(app, logged_in, session):
    logged_in.post("/jobs/rematch")
    logged_in.post("/jobs/rematch")  # joins the one queued
    events = session.exec(select(AuditEvent).where(col(AuditEvent.action) == "rematch.request")
                          .order_by(col(AuditEvent.id))).all()
    assert [(e.actor, e.detail["queued"]) for e in events] == [("coord", True), ("coord", False)]
    assert events[0].user_id is not None
    page = logged_in.get("/audit").data.decode()
    assert "今すぐ再マッチを予約" in page and "今すぐ再マッチを依頼（実行中の再マッチに合流）" in page
