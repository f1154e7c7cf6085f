"""Accounts: the first-run setup address, /users for administrators, revocable
sessions, audited and throttled logins, the last-admin rule, `kyodo users`,
and migration 0008 (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import select
from webdata import PASSWORD

from models.audit import list_events
from models.db import alembic_config
from models.tables import User
from office.accounts import create_user
from web.cli import cli
from web.setup import TOKEN_FILE, setup_message

NEW_PASSWORD = "a new long password"
STAFF_PASSWORD = "staff password 1"


def _token(message: str) -> str:
    return re.search(r"http://127\.0\.0\.1:5000/setup/([\w-]+) ", message).group(1)


def _user(session, name: str) -> User:
    session.expire_all()
    return session.exec(select(User).where(User.username == name)).one()


def _log_in(client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post("/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def _error(html: str, field: str) -> str:
    """The message shown beside ``field`` (web/templates/_field.html)."""
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
    return found.group(1) if found else ""


SETUP = {"username": "yamada", "display_name": "支援室 山田", "password": PASSWORD, "confirm": PASSWORD}


# -- the first-run setup -------------------------------------------------------


def test_setup_message_names_a_one_time_address_kept_hashed(app):
    message = setup_message(app)
    assert message.startswith("初回設定: http://127.0.0.1:5000/setup/") and message.endswith("(first-run setup)")
    token = _token(message)
    path = Path(app.instance_path) / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text()
    assert setup_message(app, base_url="https://kyodo.example.jp/").startswith(
        "初回設定: https://kyodo.example.jp/setup/")


def test_setup_page_states_the_rule_before_the_password(app, client):
    token = _token(setup_message(app))
    response = client.get(f"/setup/{token}")
    html = response.data.decode()
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"
    for label in ("ユーザー名", "表示名（任意）", "パスワード", "パスワード（確認）"):
        assert f">{label}</label>" in html
    assert html.index("12文字以上") < html.index('name="password"')


@pytest.mark.parametrize("field,data,message", [
    ("password", {"password": "short", "confirm": "short"}, "パスワードは12文字以上にしてください。"),
    ("password", {"password": "yamada", "confirm": "yamada"}, "パスワードは12文字以上にしてください。"),
    ("password", {"username": "yamada-taro-1", "password": "Yamada-Taro-1", "confirm": "Yamada-Taro-1"},
     "ユーザー名と同じパスワードは使えません。"),
    ("confirm", {"confirm": "another password"}, "上のパスワードと一致しません。"),
    ("username", {"username": ""}, "ユーザー名を入力してください。"),
    ("username", {"username": "山田 太郎"}, "ユーザー名に空白や制御文字は使えません。"),
])
def test_setup_refuses_a_bad_form_beside_the_field(app, client, session, field, data, message):
    token = _token(setup_message(app))
    response = client.post(f"/setup/{token}", data={**SETUP, **data})
    assert response.status_code == 400
    assert _error(response.data.decode(), field) == message
    assert session.exec(select(User)).first() is None
    assert client.get(f"/setup/{token}").status_code == 200  # the address still works


def test_setup_makes_the_first_admin_once_and_logs_in(app, client, session):
    token = _token(setup_message(app))
    response = client.post(f"/setup/{token}", data=SETUP)
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    assert "職員管理" in client.get("/dashboard").data.decode()
    user = _user(session, "yamada")
    assert user.is_admin and user.is_active and user.display_name == "支援室 山田"
    done = client.get(f"/setup/{token}")
    assert done.status_code == 410 and "初回設定は完了しています" in done.data.decode()
    assert client.post(f"/setup/{token}", data={**SETUP, "username": "second"}).status_code == 410
    assert client.get("/setup/not-the-token").status_code == 404
    assert setup_message(app) is None
    assert [u.username for u in session.exec(select(User))] == ["yamada"]


def test_setup_wrong_token_is_404_and_a_new_message_replaces_the_old(app, client):
    assert client.get("/setup/anything").status_code == 404  # no address made yet
    first = _token(setup_message(app))
    second = _token(setup_message(app))
    assert client.get(f"/setup/{first}").status_code == 404
    assert client.get(f"/setup/{second}").status_code == 200
    assert client.get(f"/setup/{second}x").status_code == 404


def test_setup_is_done_once_a_coordinator_exists_some_other_way(app, client, session):
    token = _token(setup_message(app))
    create_user(session=session, username="cli-made", password=PASSWORD)
    assert client.get(f"/setup/{token}").status_code == 410
    assert client.post(f"/setup/{token}", data=SETUP).status_code == 410


# -- /users: administrators only ------------------------------------------------


@pytest.fixture
def staff(session, coordinator) -> User:
    """A second coordinator, not an admin (``coordinator``, the first, is one)."""
    return create_user(session=session, username="staff", password=STAFF_PASSWORD, email="staff@example.jp")


@pytest.fixture
def staff_client(app, staff):
    client = app.test_client()
    assert _log_in(client, "staff", STAFF_PASSWORD).status_code == 302
    return client


def test_the_first_user_is_an_admin_and_others_are_not(coordinator, staff):
    assert coordinator.is_admin and not staff.is_admin


def test_users_needs_login_then_the_admin_role(client, staff_client):
    assert client.get("/users").headers["Location"].startswith("/login")
    refused = staff_client.get("/users")
    assert refused.status_code == 403 and "管理者だけ" in refused.data.decode()
    assert staff_client.post("/users/1/disable").status_code == 403
    assert "職員管理" not in staff_client.get("/dashboard").data.decode()


def test_admin_lists_and_adds_users(logged_in, session, staff):
    html = logged_in.get("/users").data.decode()
    assert html.count('data-testid="user-row"') == 2 and "staff@example.jp" in html
    assert html.index("12文字以上") < html.index('name="password"')
    added = logged_in.post("/users", data={"username": "suzuki", "display_name": "鈴木", "email": "suzuki@example.jp",
                                           "password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "is_admin": "y"})
    assert added.status_code == 303
    suzuki = _user(session, "suzuki")
    assert suzuki.is_admin and suzuki.email == "suzuki@example.jp" and suzuki.display_name == "鈴木"
    taken = logged_in.post("/users", data={"username": "suzuki", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert taken.status_code == 400 and "すでに使われています" in _error(taken.data.decode(), "username")
    bad = logged_in.post("/users", data={"username": "ito", "email": "not-an-address", "password": "short",
                                         "confirm": "short"})
    page = bad.data.decode()
    assert bad.status_code == 400
    assert _error(page, "email") == "メールアドレスの形式が正しくありません。"
    assert _error(page, "password") == "パスワードは12文字以上にしてください。"


def test_disable_ends_the_sessions_and_enable_lets_back_in(logged_in, staff_client, session, staff):
    assert staff_client.get("/dashboard").status_code == 200
    assert logged_in.post(f"/users/{staff.id}/disable").status_code == 303
    assert staff_client.get("/dashboard").headers["Location"].startswith("/login")
    assert _log_in(staff_client, "staff", STAFF_PASSWORD).status_code == 400
    assert logged_in.post(f"/users/{staff.id}/enable").status_code == 303
    assert _log_in(staff_client, "staff", STAFF_PASSWORD).status_code == 302
    actions = [e.action for e in list_events(session=session, limit=10)]
    assert "user.disable" in actions and "user.enable" in actions


def test_password_reset_ends_the_sessions_of_that_user(logged_in, staff_client, session, staff):
    page = logged_in.get(f"/users/{staff.id}/password").data.decode()
    assert page.index("12文字以上") < page.index('name="password"')
    short = logged_in.post(f"/users/{staff.id}/password", data={"password": "short", "confirm": "short"})
    assert short.status_code == 400 and _error(short.data.decode(), "password")
    reset = logged_in.post(f"/users/{staff.id}/password", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert reset.status_code == 303
    assert staff_client.get("/dashboard").headers["Location"].startswith("/login")
    assert _log_in(staff_client, "staff", STAFF_PASSWORD).status_code == 400
    assert _log_in(staff_client, "staff", NEW_PASSWORD).status_code == 302
    assert list_events(session=session, action="user.password")[0].detail == {"username": "staff"}


def test_own_new_password_keeps_this_browser_logged_in(logged_in, coordinator):
    reset = logged_in.post(f"/users/{coordinator.id}/password", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert reset.status_code == 303
    assert logged_in.get("/users").status_code == 200


def test_admin_edits_the_email(logged_in, session, staff):
    assert logged_in.get(f"/users/{staff.id}/edit").status_code == 200
    assert logged_in.post(f"/users/{staff.id}/edit", data={"email": "new@example.jp"}).status_code == 303
    assert _user(session, "staff").email == "new@example.jp"
    bad = logged_in.post(f"/users/{staff.id}/edit", data={"email": "nope@"})
    assert bad.status_code == 400 and _error(bad.data.decode(), "email") == "メールアドレスの形式が正しくありません。"
    assert list_events(session=session, action="user.update")[0].detail == {"username": "staff", "email": "new@example.jp"}


def test_the_last_active_admin_keeps_the_role(logged_in, session, coordinator, staff):
    for path, data in ((f"/users/{coordinator.id}/disable", {}), (f"/users/{coordinator.id}/admin", {"is_admin": "0"})):
        refused = logged_in.post(path, data=data)
        assert refused.status_code == 400 and "最後の有効な管理者" in refused.data.decode()
    me = _user(session, "coord")
    assert me.is_admin and me.is_active
    assert logged_in.post(f"/users/{staff.id}/admin", data={"is_admin": "1"}).status_code == 303
    dropped = logged_in.post(f"/users/{coordinator.id}/admin", data={"is_admin": "0"})
    assert dropped.headers["Location"] == "/dashboard"
    assert logged_in.get("/users").status_code == 403
    assert not _user(session, "coord").is_admin


def test_unknown_user_is_404(logged_in):
    assert logged_in.get("/users/999/password").status_code == 404
    assert logged_in.post("/users/999/disable").status_code == 404


# -- revocable sessions ---------------------------------------------------------


def test_a_cookie_copied_before_logout_no_longer_works(app, logged_in):
    cookie = logged_in.get_cookie("session").value
    copy = app.test_client()
    copy.set_cookie("session", cookie)
    assert copy.get("/dashboard").status_code == 200  # the copy works while the session lives
    logged_in.post("/logout")
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    response = replay.get("/dashboard")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert copy.get("/dashboard").status_code == 302


# -- audited and throttled logins --------------------------------------------------


def test_logins_are_audited_without_the_password(client, session, coordinator):
    _log_in(client, "coord", "wrong password here")
    _log_in(client, "nobody", "another secret")
    _log_in(client, "coord", PASSWORD)
    client.post("/logout")
    events = list_events(session=session, limit=4)
    assert [e.action for e in events] == ["auth.logout", "auth.login", "auth.login_failed", "auth.login_failed"]
    assert [e.detail["username"] for e in events[2:]] == ["nobody", "coord"]
    assert events[1].actor == "coord" and events[1].user_id == coordinator.id
    stored = json.dumps([e.detail for e in events], ensure_ascii=False) + "".join(e.actor for e in events)
    assert "wrong password" not in stored and "another secret" not in stored and PASSWORD not in stored


def test_five_failures_for_a_name_then_429_even_with_the_right_password(client, session, coordinator):
    for n in range(5):  # from five addresses: the name's count alone
        assert _log_in(client, "coord", "wrong password", f"10.0.0.{n}").status_code == 400
    throttled = _log_in(client, "Coord", PASSWORD, "10.0.1.1")
    page = throttled.data.decode()
    assert throttled.status_code == 429 and 0 < int(throttled.headers["Retry-After"]) <= 15 * 60
    assert "ログインを一時的に止めています" in page and re.search(r"約\d+分後", page)
    assert client.get("/dashboard").status_code == 302
    assert len(list_events(session=session, action="auth.login_failed")) == 5  # the refused one checked nothing
    assert _log_in(client, "other", "wrong password", "10.0.1.1").status_code == 400  # another name still answers


def test_five_failures_from_one_address_then_429(client, coordinator):
    for n in range(5):
        assert _log_in(client, f"guess{n}", "wrong password", "192.0.2.7").status_code == 400
    assert _log_in(client, "coord", PASSWORD, "192.0.2.7").status_code == 429
    assert _log_in(client, "coord", PASSWORD, "192.0.2.8").status_code == 302


def test_a_successful_login_starts_the_names_count_again(client, coordinator):
    for round_ in range(2):
        for n in range(4):
            assert _log_in(client, "coord", "wrong password", f"10.{round_}.0.{n}").status_code == 400
        assert _log_in(client, "coord", PASSWORD, f"10.{round_}.1.1").status_code == 302
        client.post("/logout")


# -- kyodo users ------------------------------------------------------------------


def test_cli_create_admin_disable_enable_and_password(runner, app, session, coordinator):
    made = runner.invoke(cli, ["users", "create", "sato", "--admin", "--email", "sato@example.jp", "--password-stdin"],
                         input=f"{PASSWORD}\n")
    assert made.exit_code == 0 and "administrator" in made.output, made.output
    assert _user(session, "sato").is_admin and _user(session, "sato").email == "sato@example.jp"
    assert runner.invoke(cli, ["users", "disable", "sato"]).exit_code == 0
    assert not _user(session, "sato").is_active
    assert runner.invoke(cli, ["users", "enable", "sato"]).exit_code == 0
    assert _user(session, "sato").is_active
    changed = runner.invoke(cli, ["users", "password", "sato", "--password-stdin"], input=f"{NEW_PASSWORD}\n")
    assert changed.exit_code == 0, changed.output
    assert _log_in(app.test_client(), "sato", NEW_PASSWORD).status_code == 302
    listing = runner.invoke(cli, ["users", "list"]).output
    assert "sato\tsato\tadmin" in listing


@pytest.mark.parametrize("args,stdin,expected", [
    (["users", "password", "coord", "--password-stdin"], "short\n", "the password must have at least 12 characters"),
    (["users", "password", "nobody", "--password-stdin"], f"{PASSWORD}\n", "no user 'nobody'"),
    (["users", "disable", "coord"], "", "coord is the last active administrator"),
    (["users", "disable", "nobody"], "", "no user 'nobody'"),
    (["users", "enable", "nobody"], "", "no user 'nobody'"),
])
def test_cli_refuses_bad_input_with_one_line(runner, coordinator, args, stdin, expected):
    result = runner.invoke(cli, args, input=stdin)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {expected}"


# -- migration 0008 ------------------------------------------------------------------


def test_migration_0008_makes_existing_users_admins(engine):
    config = alembic_config(engine)
    command.downgrade(config, "0007")
    with engine.begin() as connection:
        connection.execute(text('INSERT INTO "user" (username, display_name, email, is_active, password_hash, '
                                "created_at) VALUES ('old', 'old', '', true, 'x', CURRENT_TIMESTAMP)"))
    command.upgrade(config, "head")
    with engine.connect() as connection:
        row = connection.execute(text('SELECT is_admin, session_version FROM "user" WHERE username = \'old\'')).one()
    assert bool(row[0]) is True and row[1] == 0
