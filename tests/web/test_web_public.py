"""The public side: form, validation, receipt, status page, rate limit, escaping."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select
from webdata import PASSWORD, PROPOSAL

from models.tables import Proposal, Suggestion
from web import create_app


def test_form_has_every_labelled_field(client):
    html = client.get("/proposals/new").data.decode()
    for label in ("団体名", "代表者名", "メールアドレス", "電話番号（任意）", "提案タイトル", "提案内容",
                  "期待される効果", "希望する協働の形", "概算予算（千円）（任意）"):
        assert f">{label}<" in html, label
    for name in ("organization", "representative", "email", "phone", "title", "body", "expected_effect",
                 "budget_thousand_yen"):
        assert re.search(rf'<label for="{name}">', html), name
    for choice in ("委託", "補助", "共催", "後援", "その他"):
        assert choice in html
    assert ">入力内容を確認する</button>" in html
    # An attribute that does not apply is left out, not printed as "None".
    assert '="None"' not in html
    assert 'aria-describedby="phone-hint"' in html and "aria-invalid" not in html


def test_confirmation_step_shows_the_input_and_stores_nothing(client, session):
    text = {**PROPOSAL, "body": PROPOSAL["body"] + "\n二行目も送ります。"}
    page = client.post("/proposals/new", data={**text, "action": "confirm"})
    html = page.data.decode()
    assert page.status_code == 200
    assert 'data-testid="confirm"' in html and ">提案を送信</button>" in html and ">修正する</button>" in html
    assert PROPOSAL["title"] in html and "二行目も送ります。" in html
    assert session.exec(select(Proposal)).all() == []
    back = client.post("/proposals/new", data={**text, "action": "edit"}).data.decode()
    assert ">入力内容を確認する</button>" in back and PROPOSAL["title"] in back
    assert session.exec(select(Proposal)).all() == []
    sent = client.post("/proposals/new", data={**text, "action": "submit"})
    assert sent.status_code == 303
    stored = session.exec(select(Proposal)).one()
    assert stored.body.endswith("二行目も送ります。")


def test_confirmation_of_invalid_input_stays_on_the_form(client, session):
    page = client.post("/proposals/new", data={**PROPOSAL, "email": "not-an-address", "action": "confirm"})
    assert page.status_code == 400
    assert 'data-testid="confirm"' not in page.data.decode()
    assert session.exec(select(Proposal)).all() == []
    # The field says it is invalid and points at its message.
    email = re.search(r"<input[^>]*id=\"email\"[^>]*>", page.data.decode()).group(0)
    assert 'aria-invalid="true"' in email and "email-error" in email


def test_submission_stores_proposal_and_suggestions(client, session, submitted):
    proposal = session.get(Proposal, submitted.id)
    assert proposal.title == PROPOSAL["title"]
    assert proposal.collaboration_type == "co_hosting"
    assert proposal.budget_thousand_yen == 300
    assert proposal.stage == "received"
    assert submitted.receipt_number == proposal.receipt_number
    rows = session.exec(select(Suggestion).where(Suggestion.proposal_id == submitted.id)).all()
    assert rows, "online matching stored no suggestion"


def test_status_page_shows_the_published_stage_and_nothing_private(client, logged_in, submitted):
    # A pair decision is internal triage: the NPO still sees 受付.
    client.post(f"/review/proposals/{submitted.id}/decisions",
                data={"program_id": "1", "verdict": "accepted", "note": "内部メモ：秘密"})
    client.post("/logout")
    html = client.get(submitted.status_path).data.decode()
    assert re.search(r'data-testid="status">受付<', html)
    assert "最終更新日" in html
    assert "内部メモ" not in html and "hanako@example.jp" not in html and "スコア" not in html


@pytest.mark.parametrize("token", ["x" * 32, "short", "a" * 200, "..%2F..%2Fetc"])
def test_unknown_status_token_is_404(client, submitted, token):
    assert client.get(f"/status/{token}").status_code == 404


def test_invalid_form_keeps_input_and_explains_beside_each_field(client, session):
    data = {**PROPOSAL, "email": "not-an-address", "title": "", "budget_thousand_yen": "たくさん",
            "body": "あ" * 8001}
    response = client.post("/proposals/new", data=data)
    assert response.status_code == 400
    html = response.data.decode()
    assert 'id="email-error">メールアドレスの形式が正しくありません。' in html
    assert 'id="title-error">提案タイトルを入力してください。' in html
    assert "整数（半角数字）で入力してください。" in html
    assert "提案内容は8000文字以内で入力してください。" in html
    assert 'value="not-an-address"' in html and 'value="NPO法人みどりの輪"' in html
    assert session.exec(select(Proposal)).first() is None


def test_unknown_collaboration_type_rejected(client):
    response = client.post("/proposals/new", data={**PROPOSAL, "collaboration_type": "賄賂"})
    assert response.status_code == 400
    assert "collaboration_type-error" in response.data.decode()


def test_html_in_a_proposal_is_shown_as_text(client, logged_in, submit):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    done = submit(title=evil, body=evil + " 公園の清掃活動を行います。")
    for path in (f"/review/proposals/{done.id}", "/review", done.status_path):
        html = client.get(path).data.decode()
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;" in html, path


def test_receipt_without_submission_is_404(client):
    assert client.get("/proposals/receipt").status_code == 404


def test_rate_limit_on_public_submissions(database_url, tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "rl"), "DATABASE_URL": database_url, "SECRET_KEY": "t" * 32,
                      "WTF_CSRF_ENABLED": False, "SUBMIT_RATE_LIMIT": "2/minute"})
    client = app.test_client()
    codes = [client.post("/proposals/new", data={**PROPOSAL, "title": ""}).status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    api = client.post("/api/v1/proposals", json={})
    assert api.status_code == 429 and api.json["error"] == "too_many_requests"
    assert int(api.headers["Retry-After"]) >= 1
    other = client.post("/proposals/new", data={}, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 400
    from web.db import dispose

    dispose(app)


def test_bad_rate_limit_setting_is_refused(tmp_path):
    with pytest.raises(ValueError, match="KYODO_SUBMIT_RATE_LIMIT"):
        create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "t" * 32, "SUBMIT_RATE_LIMIT": "lots"})


def test_request_size_limit(client):
    big = {**PROPOSAL, "body": "あ" * 400_000}  # ~1.2 MB of UTF-8
    assert client.post("/proposals/new", data=big).status_code == 413


def test_session_cookie_is_httponly_and_samesite(client, coordinator):
    response = client.post("/login", data={"username": "coord", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
