"""The rematch the console queues (web/jobs_views.py, web/programs.py): 今すぐ
再マッチ, the catalogue import and the キーワード edits coalesced into one run,
and the card's status; on the app's default queue (jobs.sqlite3 in the test's
instance folder), SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from flask import render_template
from sqlmodel import Session, select
from webdata import PASSWORD

from models.locks import acquire
from models.tables import MatchOutcome, MatchRun, Program
from office.rematch import REMATCH_LOCK
from web import create_app
from web.db import dispose, get_engine
from web.jobs import get_jobs, queued_rematch
from web.jobs_views import QUEUED_MESSAGE, rematch_status

QUEUED = "再マッチを予約しました（数分で候補に反映されます）"


def _pending(app) -> int:
    return get_jobs(app).huey.pending_count()


def test_rematch_now_queues_one_and_says_so(app, logged_in):
    response = logged_in.post("/jobs/rematch")
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    assert QUEUED in logged_in.get("/dashboard").data.decode() and QUEUED_MESSAGE == QUEUED
    again = logged_in.post("/jobs/rematch", follow_redirects=True).data.decode()
    assert "再マッチはすでに予約されています" in again
    assert _pending(app) == 1 and queued_rematch(app)["reason"] == "dashboard:coord"


def test_rematch_now_needs_a_login_and_a_post(app, client):
    assert client.post("/jobs/rematch").status_code == 302  # to the login page
    assert client.get("/jobs/rematch").status_code in (302, 405)
    assert _pending(app) == 0


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def test_rematch_now_needs_the_csrf_token(database_url, tmp_path):
    from office.accounts import create_user

    app = create_app({"INSTANCE_PATH": str(tmp_path / "csrf"), "DATABASE_URL": database_url, "SECRET_KEY": "t" * 32})
    try:
        with Session(get_engine(app)) as session:
            create_user(session=session, username="coord", password=PASSWORD)
        client = app.test_client()
        token = _token(client.get("/login").data.decode())
        login = {"username": "coord", "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=login).status_code == 302
        assert client.post("/jobs/rematch").status_code == 400
        assert _pending(app) == 0
        token = _token(client.get("/dashboard").data.decode())  # the logout form's token
        assert client.post("/jobs/rematch", data={"csrf_token": token}).status_code == 302
        assert _pending(app) == 1
    finally:
        dispose(app)


def test_keyword_edits_and_an_import_queue_one_rematch(app, logged_in, session):
    programs = session.exec(select(Program).where(Program.fiscal_year == 2008).order_by(Program.id).limit(3)).all()
    for program, words in zip(programs, ["避難所", "備蓄", "防災訓練"], strict=True):
        html = logged_in.post(f"/programs/{program.id}", data={"keywords": words}, follow_redirects=True).data.decode()
        assert "キーワードを保存しました。" + QUEUED in html
    unchanged = logged_in.post(f"/programs/{programs[0].id}", data={"keywords": "避難所"}, follow_redirects=True)
    assert "キーワードは変わっていません" in unchanged.data.decode()
    sheet = "id,キーワード\r\nH20-01,まちの憲法\r\n".encode()
    uploaded = logged_in.post(
        "/programs/import", data={"kind": "keywords", "fiscal_year": "", "file": (io.BytesIO(sheet), "k.csv")},
        content_type="multipart/form-data", follow_redirects=True,
    ).data.decode()
    assert "キーワードを取り込みました（2008年度）：更新 1件" in uploaded and QUEUED in uploaded
    assert _pending(app) == 1  # four changes, one run
    assert queued_rematch(app)["reason"] == f"keywords of program {programs[0].id}"


def test_the_card_shows_the_next_nightly_run_and_the_button(app, logged_in):
    with app.test_request_context("/dashboard"):
        html = render_template("_rematch_card.html")
    assert "まだ実行されていません" in html and "毎晩 02:30 の定期実行" in html
    assert 'action="/jobs/rematch"' in html and "今すぐ再マッチ" in html and 'name="csrf_token"' in html
    assert "kyodo worker" in html  # no worker has run yet: queued runs wait, the card says so
    logged_in.post("/jobs/rematch")
    with app.test_request_context("/dashboard"):
        html = render_template("_rematch_card.html")
    assert "予約済み" in html and "毎晩" not in html


def test_the_status_reads_a_running_rematch_s_progress(app, submitted, session, engine):
    run = MatchRun(status="running", host="here", pid=1)
    session.add(run)
    session.commit()
    session.add(MatchOutcome(proposal_id=submitted.id, match_run_id=run.id))
    session.commit()
    lock = acquire(engine, REMATCH_LOCK)
    try:
        status = rematch_status(app)
        assert status["running"].id == run.id and status["progress"] == {"done": 1, "total": 1, "percent": 100}
        with app.test_request_context("/dashboard"):
            html = render_template("_rematch_card.html", rematch=status)
        assert "提案 1 / 1 件" in html
    finally:
        lock.release()
    # The lock is free: that run's process is gone, it is no longer shown as running.
    assert rematch_status(app)["running"] is None


def test_the_status_names_the_last_finished_run_and_the_next_time(app, session):
    session.add(MatchRun(status="succeeded", n_proposals=3, duration_seconds=1.5))
    session.commit()
    status = rematch_status(app)
    assert status["last"].status == "succeeded" and status["queued"] is None and not status["next_is_queued"]
    assert status["next_at"] > datetime.now(UTC) and status["next_at"].strftime("%H:%M") == "02:30"
    assert status["worker_silent"] is True and status["queue_error"] is None


def test_a_queue_down_keeps_the_change_and_says_the_rematch_was_not_queued(app, logged_in, session):
    from web.jobs import install_jobs

    install_jobs(app, url="redis://127.0.0.1:1/0")  # nothing listens there
    program = session.exec(select(Program).where(Program.external_id == "H20-03")).one()
    html = logged_in.post(f"/programs/{program.id}", data={"keywords": "まちの縁側"}, follow_redirects=True).data.decode()
    assert "キーワードを保存しました。再マッチを予約できませんでした" in html
    session.expire_all()
    assert session.get(Program, program.id).keywords == "まちの縁側"
    assert "再マッチを予約できませんでした" in logged_in.post("/jobs/rematch", follow_redirects=True).data.decode()
    status = rematch_status(app)
    assert status["queue_error"] and status["queued"] is None
    with app.test_request_context("/dashboard"):
        assert "ジョブキューに接続できません" in render_template("_rematch_card.html", rematch=status)
