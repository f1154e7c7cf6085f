"""Login, logout, `kyodo users create`, and that no coordinator route answers without a login."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select
from webdata import PASSWORD

from models.tables import User
from web.cli import cli

# The routes anyone may call; every other route needs a login or a token.
PUBLIC_ENDPOINTS = {
    "static", "public.index", "public.new_proposal", "public.receipt", "public.status",
    "auth.login", "auth.logout", "api.openapi", "api.create_proposal",
    # No login, but the secret of a link: the NPO's status token, the department's signed token.
    "public.withdraw", "opinion_page.opinion", "api.answer_opinion",
    # A lost status link: the receipt number and e-mail address stand for the token.
    "public.status_recover", "public.status_recover_sent",
    # No login yet: the one-time first-run address, its secret in the path (404 for any other token).
    "setup.setup",
}


def test_login_page_has_labelled_fields(client):
    html = client.get("/login").data.decode()
    assert '<label for="username">ユーザー名</label>' in html
    assert '<label for="password">パスワード</label>' in html
    assert ">ログイン</button>" in html


def test_login_then_logout(client, coordinator):
    assert client.get("/dashboard").status_code == 302
    response = client.post("/login", data={"username": "coord", "password": PASSWORD})
    assert response.headers["Location"] == "/dashboard"
    assert client.get("/dashboard").status_code == 200
    client.post("/logout")
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize("username,password", [("coord", "wrong password"), ("nobody", PASSWORD), ("", "")])
def test_bad_login_is_refused(client, coordinator, username, password):
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 400
    assert client.get("/dashboard").status_code == 302


def test_login_returns_to_the_page_asked_for_but_never_elsewhere(client, coordinator):
    login = client.get("/review?status=received")
    assert login.headers["Location"].startswith("/login?next=")
    ok = client.post("/login", data={"username": "coord", "password": PASSWORD, "next": "/review?status=received"})
    assert ok.headers["Location"] == "/review?status=received"
    client.post("/logout")
    evil = client.post("/login", data={"username": "coord", "password": PASSWORD, "next": "//evil.example/"})
    assert evil.headers["Location"] == "/dashboard"


def _concrete(rule) -> str:
    path = rule.rule
    for argument in rule.arguments:
        path = re.sub(rf"<(?:[a-z]+:)?{argument}>", "1", path)
    return path


def test_every_non_public_route_needs_login_or_token(app, client, submitted):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = _concrete(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            checked += 1
            if rule.rule.startswith("/api/"):
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.is_json
            else:
                assert response.status_code == 302, (method, path, response.status_code)
                assert response.headers["Location"].startswith("/login"), (method, path)
    assert checked >= 15


def test_public_endpoints_are_the_ones_named(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert PUBLIC_ENDPOINTS <= endpoints


def test_users_create_with_password_stdin(runner, session):
    result = runner.invoke(cli, ["users", "create", "sato", "--password-stdin"], input="s3cret-passphrase\n")
    assert result.exit_code == 0, result.output
    user = session.exec(select(User).where(User.username == "sato")).one()
    assert user.password_hash != "s3cret-passphrase" and "s3cret-passphrase" not in user.password_hash
    again = runner.invoke(cli, ["users", "create", "sato", "--password-stdin"], input="s3cret-passphrase\n")
    assert again.exit_code != 0 and "already exists" in again.output


def test_users_create_prompts_twice(runner, client, app):
    result = runner.invoke(cli, ["users", "create", "ito"], input="long enough phrase\nlong enough phrase\n")
    assert result.exit_code == 0, result.output
    response = client.post("/login", data={"username": "ito", "password": "long enough phrase"})
    assert response.status_code == 302


@pytest.mark.parametrize("password", ["short", "eleven char"])
def test_users_create_follows_the_one_password_rule(runner, session, password):
    # The rule of setup and /users (office.accounts.check_password): 12
    # characters, not the name; 11 are refused, as everywhere else.
    result = runner.invoke(cli, ["users", "create", "kato", "--password-stdin"], input=f"{password}\n")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "at least 12 characters" in result.output
    assert session.exec(select(User).where(User.username == "kato")).first() is None


def test_users_create_refuses_the_name_as_password(runner, session):
    result = runner.invoke(cli, ["users", "create", "katokatokato", "--password-stdin"], input="katokatokato\n")
    assert result.exit_code == 1 and "must not be the user name" in result.output
