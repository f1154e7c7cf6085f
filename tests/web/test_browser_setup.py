"""The first start in Debian's chromium: an empty instance (no coordinator)
prints its one-time setup address; the first administrator registers there,
is refused a short password first (the rule is on the page before typing),
lands logged in on the dashboard, reaches 職員管理 and adds a coordinator, who
logs in in a second browser. The address then says setup is done. A missing
chromium fails, never skips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from test_browser import ARGS, CHROMIUM, browser, served  # noqa: F401
from webdata import PASSWORD

from web import create_app
from web.setup import setup_message

pytestmark = pytest.mark.browser
STAFF_PASSWORD = "staff password 12"


@pytest.fixture
def empty_site(tmp_path) -> Iterator[tuple[str, Flask]]:
    """A new instance (CSRF on, SQLite, no coordinator) on a free loopback port."""
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "browser" * 5})
    with served(app) as url:
        yield url, app


def test_first_run_setup_in_the_browser(browser, empty_site, tmp_path):  # noqa: F811
    url, app = empty_site
    message = setup_message(app, base_url=url)
    address = message.split(" ")[1]
    assert address.startswith(f"{url}/setup/")

    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(address)
    assert page.get_by_role("heading", level=1).inner_text() == "初回設定：最初の管理者の登録"
    assert "12文字以上" in page.locator("#password-hint").inner_text()
    page.get_by_label("ユーザー名").fill("yamada")
    page.get_by_label("表示名（任意）").fill("支援室 山田")
    page.get_by_label("パスワード", exact=True).fill("too short")
    page.get_by_label("パスワード（確認）").fill("too short")
    page.get_by_role("button", name="管理者を登録してログイン").click()
    assert page.locator("#password-error").inner_text() == "パスワードは12文字以上にしてください。"
    page.screenshot(path=str(tmp_path / "setup.png"), full_page=True)

    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_label("パスワード（確認）").fill(PASSWORD)
    page.get_by_role("button", name="管理者を登録してログイン").click()
    page.wait_for_url("**/dashboard")
    page.get_by_role("link", name="職員管理").click()
    page.wait_for_url("**/users")
    assert page.get_by_test_id("user-row").count() == 1
    page.get_by_label("ユーザー名").fill("suzuki")
    page.get_by_label("メールアドレス（任意）").fill("suzuki@example.jp")
    page.get_by_label("パスワード", exact=True).fill(STAFF_PASSWORD)
    page.get_by_label("パスワード（確認）").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="追加する").click()
    page.wait_for_url("**/users")
    assert page.get_by_test_id("user-row").count() == 2
    assert "suzuki@example.jp" in page.locator('[data-username="suzuki"]').inner_text()
    page.screenshot(path=str(tmp_path / "users.png"), full_page=True)

    staff = browser.new_page()
    staff.goto(url + "/login")
    staff.get_by_label("ユーザー名").fill("suzuki")
    staff.get_by_label("パスワード").fill(STAFF_PASSWORD)
    staff.get_by_role("button", name="ログイン").click()
    staff.wait_for_url("**/dashboard")
    assert staff.get_by_role("link", name="職員管理").count() == 0  # not an administrator

    again = browser.new_page()
    response = again.goto(address)
    assert response.status == 410
    assert again.get_by_role("heading", level=1).inner_text() == "初回設定は完了しています"
    assert setup_message(app) is None
