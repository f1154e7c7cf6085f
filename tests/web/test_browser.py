"""Headless Chromium (Debian's package) through Playwright: an NPO submits and
reads its status; a coordinator logs in, opens the proposal, sees highlighted
terms, accepts one and finds it in the CSV export; the form fits a phone.
Screenshots go to docs/screenshots/ with KYODO_UPDATE_SCREENSHOTS=1. A missing chromium fails, never skips."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, expect, sync_playwright
from sqlmodel import Session
from webdata import PASSWORD, PROPOSAL
from werkzeug.serving import make_server

from office.accounts import create_user
from web import create_app
from web.db import dispose, get_engine

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# The README's screenshots are refreshed only on request, so a test run leaves
# the checkout clean: KYODO_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest -m browser
DOC_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def screenshots(tmp_path) -> Path:
    return DOC_SCREENSHOTS if os.environ.get("KYODO_UPDATE_SCREENSHOTS") else tmp_path
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"browser tests need Debian's chromium at {CHROMIUM}: apt-get install chromium", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """``app`` served by werkzeug on a free loopback port (its base URL), then
    stopped and its engine closed: every browser test's server."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=5)
        dispose(app)


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    """The app (CSRF on, SQLite) served by werkzeug on a free loopback port."""
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "browser" * 5})
    with Session(get_engine(app)) as session:
        create_user(session=session, username="coord", password=PASSWORD)
    with served(app) as url:
        yield url


def _fill_form(page) -> None:
    for name in ("organization", "representative", "email", "phone", "title", "body", "expected_effect",
                 "budget_thousand_yen"):
        page.get_by_label(_LABELS[name], exact=True).fill(PROPOSAL[name])
    page.get_by_label("共催").check()
    page.get_by_label("上記の「個人情報の取扱い」に同意します").check()


_LABELS = {
    "organization": "団体名", "representative": "代表者名", "email": "メールアドレス", "phone": "電話番号（任意）",
    "title": "提案タイトル", "body": "提案内容", "expected_effect": "期待される効果",
    "budget_thousand_yen": "概算予算（千円）（任意）",
}


def _log_in(page) -> None:
    """Fill and send the login form the page shows."""
    page.get_by_label("ユーザー名").fill("coord")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()


def _coordinator_page(browser, server: str):
    """A new page, logged in as the coordinator, on the dashboard."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(server + "/login")
    _log_in(page)
    page.wait_for_url("**/dashboard**")
    return page


def test_submit_review_accept_and_export(browser, server, screenshots):
    npo = browser.new_page(viewport={"width": 1000, "height": 900})
    npo.goto(server + "/proposals/new")
    _fill_form(npo)
    npo.screenshot(path=str(screenshots / "form.png"), full_page=True)
    npo.get_by_role("button", name="入力内容を確認する").click()
    assert PROPOSAL["title"] in npo.get_by_test_id("confirm").inner_text()
    npo.get_by_role("button", name="提案を送信").click()
    npo.wait_for_url("**/proposals/receipt")
    receipt = npo.get_by_test_id("receipt-number").inner_text()
    status_url = npo.get_by_test_id("status-link").get_attribute("href")
    npo.goto(status_url)
    assert npo.get_by_test_id("status").inner_text() == "受付"

    coordinator = browser.new_page(viewport={"width": 1100, "height": 900})
    coordinator.goto(server + "/review")
    coordinator.wait_for_url("**/login**")
    _log_in(coordinator)
    coordinator.wait_for_url("**/review")
    coordinator.screenshot(path=str(screenshots / "queue.png"), full_page=True)
    with coordinator.expect_navigation():
        coordinator.get_by_role("link", name=PROPOSAL["title"]).click()
    # expect() waits for the page the link loads; a bare count() could read it half-parsed.
    expect(coordinator.locator("[data-testid=proposal-body] mark").first).to_be_attached()
    first = coordinator.get_by_test_id("suggestion").first
    program_name = first.locator("h3 a").first.inner_text()
    first.locator("details summary").click()
    # The shared terms are marked in the program's own text too (目的 or 取り組み内容).
    assert first.locator("details dd mark").count() >= 1
    assert first.locator("details dd mark").first.is_visible()
    coordinator.screenshot(path=str(screenshots / "proposal.png"), full_page=True)
    first.get_by_label("メモ（任意）").fill("担当課と調整")
    with coordinator.expect_navigation():
        first.get_by_role("button", name="採用").click()
    assert coordinator.get_by_test_id("current-verdict").first.inner_text() == "採用"
    assert "確認中" in coordinator.get_by_test_id("proposal-stage").inner_text()

    exported = coordinator.request.get(server + "/export/pairings.csv")
    text = exported.body().decode("utf-8-sig")
    assert receipt in text and program_name in text and "採用" in text and "担当課と調整" in text
    npo.goto(status_url)
    # A pair decision is the office's triage: the NPO sees nothing new yet.
    assert npo.get_by_test_id("status").inner_text() == "受付"


def test_phone_width_form_has_no_horizontal_scroll(browser, server, screenshots):
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    for path in ("/proposals/new", "/", "/login"):
        page.goto(server + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (path, overflow)
    page.goto(server + "/proposals/new")
    page.screenshot(path=str(screenshots / "form-phone.png"), full_page=True)
    context.close()


def test_coordinator_adds_keywords_and_a_proposal_in_those_words_finds_the_program(browser, server, screenshots):
    coordinator = _coordinator_page(browser, server)
    coordinator.goto(server + "/programs?q=NPOフェスタ")
    coordinator.get_by_test_id("program-row").first.get_by_role("link").first.click()
    program_name = coordinator.locator("h1").inner_text()
    coordinator.get_by_role("textbox", name="キーワード（言い換え）").fill("マルシェ、ブース出展、顔の見える交流")
    coordinator.screenshot(path=str(screenshots / "program-keywords.png"), full_page=True)
    with coordinator.expect_navigation():
        coordinator.get_by_role("button", name="キーワードを保存").click()
    assert "キーワードを保存しました" in coordinator.locator(".flash").first.inner_text()
    assert coordinator.get_by_role("textbox", name="キーワード（言い換え）").input_value() == "マルシェ、ブース出展、顔の見える交流"

    # Written for testing: a proposal in the keywords' words. With no run
    # published yet, online matching refits on the edited catalogue.
    npo = browser.new_page(viewport={"width": 1000, "height": 900})
    npo.goto(server + "/proposals/new")
    _fill_form(npo)
    npo.get_by_label("提案タイトル", exact=True).fill("秋のマルシェで団体どうしの交流を")
    npo.get_by_label("提案内容", exact=True).fill(
        "秋のマルシェにブース出展する団体どうしが顔の見える交流をできるよう、出展の段取りを市と一緒に考えたい。"
    )
    npo.get_by_role("button", name="入力内容を確認する").click()
    npo.get_by_role("button", name="提案を送信").click()
    npo.wait_for_url("**/proposals/receipt")

    coordinator.goto(server + "/review")
    with coordinator.expect_navigation():
        coordinator.get_by_role("link", name="秋のマルシェで団体どうしの交流を").click()
    first = coordinator.get_by_test_id("suggestion").first
    assert first.locator("h3 a").first.inner_text() == program_name
    first.locator("details summary").click()
    assert first.get_by_test_id("program-keywords").locator("mark").count() >= 1


def test_coordinator_uploads_the_citys_spreadsheet(browser, server, tmp_path):
    # Written for testing: two programs of a made-up FY2026 list, in Shift_JIS as Excel saves it.
    sheet = tmp_path / "令和8年度協働事業.csv"
    sheet.write_bytes(
        "id,年度,施策名,目的,事業名,取り組み内容,担当課\r\n"
        "R08-01,2026,防災のまちづくり,市民の防災意識を高める,防災講座の開催,地域で防災講座と避難訓練を行う,危機管理課\r\n"
        "R08-02,2026,子育て支援,子育て家庭を地域で支える,親子サロン,子育て中の親子の交流の場をつくる,子育て支援課\r\n"
        .encode("cp932")
    )
    page = _coordinator_page(browser, server)
    page.goto(server + "/programs")
    page.get_by_role("link", name="表計算ファイルから取り込む（事業一覧・キーワード）").click()
    page.get_by_label("ファイル（CSV・Excel・JSONL）").set_input_files(str(sheet))
    page.get_by_role("button", name="取り込む").click()
    page.wait_for_url("**/programs")
    assert "追加 2件" in page.locator(".flash").first.inner_text()
    assert page.get_by_role("link", name="親子サロン").is_visible()
