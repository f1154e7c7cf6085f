"""Fixtures of the web tests: a coordinator, a logged-in client, an API token
and a submitted proposal, on the root conftest's app (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from webdata import PASSWORD, Submitted, submit_form

from office.accounts import create_token, create_user


@pytest.fixture
def coordinator(session):
    return create_user(session=session, username="coord", password=PASSWORD, display_name="支援室 太郎")


@pytest.fixture
def logged_in(client, coordinator):
    response = client.post("/login", data={"username": "coord", "password": PASSWORD})
    assert response.status_code == 302
    return client


@pytest.fixture
def token(session) -> str:
    _, value = create_token(session=session, name="test-token")
    return value


@pytest.fixture
def auth_headers(token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def submit(client):
    """Submits the form (with field overrides) and returns the receipt's data."""
    return lambda **overrides: submit_form(client, **overrides)


@pytest.fixture
def submitted(client) -> Submitted:
    return submit_form(client)
