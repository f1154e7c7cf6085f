"""The public form under gunicorn, with the semantic layer on and the real model.

The other tests of the deferred semantic step (web.public._suggest_semantic)
close the test client's response to trigger ``call_on_close``; this one
checks that a real WSGI server runs it: the submitter gets the receipt, and
the proposal's suggestions become the fused ones (an e5 score on every row)
without any other request.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from models.db import make_engine
from models.tables import Proposal, Suggestion

BIN = Path(sys.executable).parent
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail("gunicorn did not start within 60 s")


@pytest.fixture
def served(tmp_path) -> tuple[str, str]:
    """(base URL, database URL) of the app under gunicorn in semantic mode,
    after a semantic ``kyodo rematch`` has published an index."""
    url = f"sqlite:///{tmp_path / 'kyodo.sqlite3'}"
    env = dict(
        os.environ,
        KYODO_DATABASE_URL=url,
        KYODO_INSTANCE_PATH=str(tmp_path / "instance"),
        KYODO_MATCH_MODE="semantic",
        KYODO_SECRET_KEY="test-gunicorn-" * 3,
    )
    subprocess.run([str(BIN / "kyodo"), "rematch"], env=env, check=True, capture_output=True, text=True)
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}", "web:create_app()"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_port(port, server)
            yield f"http://127.0.0.1:{port}", url
        finally:
            server.terminate()
            server.wait(timeout=30)
    # A failed semantic step is logged, not raised: the log must not show one.
    assert "failed; TF-IDF ones kept" not in log.read_text(encoding="utf-8", errors="replace")


def test_submission_gets_fused_suggestions_after_the_response(served):
    base, url = served
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = opener.open(base + "/proposals/new", timeout=30).read().decode()
    token = CSRF.search(form)
    assert token, "no CSRF token in the form"
    data = urllib.parse.urlencode({
        "csrf_token": token.group(1),
        "organization": "NPO法人 テスト見守りネット（テスト用）",
        "representative": "山田 花子",
        "email": "gunicorn-test@example.jp",
        "phone": "",
        "title": "ひとり暮らしの高齢者を地域で見守る",
        # Written for testing.
        "body": "ひとり暮らしの高齢者の自宅を近所のボランティアが定期的に訪ね、困りごとを聞いて"
                "市の窓口につなぐ見守り活動を、市と一緒に広げたいと考えています。",
        "expected_effect": "孤立を防ぎ、地域のつながりが強まる。",
        "collaboration_type": "other",
        "budget_thousand_yen": "",
        "consent": "y",
        "action": "submit",
    }).encode()
    response = opener.open(base + "/proposals/new", data=data, timeout=30)
    page = response.read().decode()
    assert response.status == 200
    assert "受付番号" in page

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            proposal = session.exec(select(Proposal).where(Proposal.email == "gunicorn-test@example.jp")).one()
            assert proposal.receipt_number and proposal.receipt_number in page
            deadline = time.monotonic() + 60
            while True:
                rows = session.exec(
                    select(Suggestion).where(
                        col(Suggestion.proposal_id) == proposal.id, col(Suggestion.match_run_id).is_(None)
                    )
                ).all()
                if rows and all(r.semantic_score is not None for r in rows):
                    break
                assert time.monotonic() < deadline, "the fused suggestions never replaced the TF-IDF ones"
                time.sleep(0.2)
                session.expire_all()
        assert len(rows) == 5
        assert all(r.lexical_score is not None for r in rows)
        assert sorted(r.rank for r in rows) == [1, 2, 3, 4, 5]
    finally:
        engine.dispose()
