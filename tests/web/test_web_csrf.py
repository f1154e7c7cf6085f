"""CSRF protection, with the setting as in production (the shared app fixture turns it off)."""

from __future__ import annotations

import re

import pytest
from webdata import PASSWORD, PROPOSAL, PROPOSAL_FIELDS

from web import create_app
from web.db import dispose


@pytest.fixture
def csrf_app(database_url, tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "csrf"), "DATABASE_URL": database_url, "SECRET_KEY": "t" * 32})
    assert app.config["WTF_CSRF_ENABLED"] is True
    yield app
    dispose(app)


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_forms_without_a_csrf_token_are_refused(csrf_app):
    client = csrf_app.test_client()
    response = client.post("/proposals/new", data=PROPOSAL)
    assert response.status_code == 400 and "不正な送信" in response.data.decode()
    assert client.post("/login", data={"username": "a", "password": "b"}).status_code == 400


def test_forms_with_the_token_work_and_the_api_is_exempt(csrf_app):
    client = csrf_app.test_client()
    token = _token(client.get("/proposals/new").data.decode())
    assert client.post("/proposals/new", data={**PROPOSAL, "csrf_token": token}).status_code == 303
    assert client.post("/api/v1/proposals", json={**PROPOSAL_FIELDS, "budget_thousand_yen": 3}).status_code == 201


def test_console_posts_need_the_token(csrf_app):
    from sqlmodel import Session

    from office.accounts import create_user
    from web.db import get_engine

    with Session(get_engine(csrf_app)) as session:
        create_user(session=session, username="coord", password=PASSWORD)
    client = csrf_app.test_client()
    token = _token(client.get("/login").data.decode())
    assert client.post("/login", data={"username": "coord", "password": PASSWORD, "csrf_token": token}).status_code == 302
    refused = client.post("/review/proposals/1/decisions", data={"program_id": "1", "verdict": "accepted"})
    assert refused.status_code == 400
    assert client.post("/logout").status_code == 400
    assert client.get("/dashboard").status_code == 200
