"""Fixtures of the web tests: a coordinator, a logged-in client, an API token
and a submitted proposal, on the root conftest's app (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from webdata import PASSWORD, PROPOSAL

from office.accounts import create_token, create_user


@dataclass
class Submitted:
    id: int
    receipt_number: str
    status_path: str


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


def _submit(client, **overrides) -> Submitted:
    """Post the public form, follow to the receipt and read it."""
    response = client.post("/proposals/new", data={**PROPOSAL, **overrides})
    assert response.status_code == 303, response.data.decode()[:2000]
    response.close()  # as a WSGI server does: the full suggestions and related lists follow the response
    receipt = client.get(response.headers["Location"])
    html = receipt.data.decode()
    number = re.search(r'data-testid="receipt-number">([^<]+)<', html).group(1)
    link = re.search(r'data-testid="status-link">https?://[^/]+(/status/[^<]+)<', html).group(1)
    proposal_id = int(number.split("-")[1])
    return Submitted(proposal_id, number, link)


@pytest.fixture
def submit(client):
    """Submits the form (with field overrides) and returns the receipt's data."""
    return lambda **overrides: _submit(client, **overrides)


@pytest.fixture
def submitted(client) -> Submitted:
    return _submit(client)
