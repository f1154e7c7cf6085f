"""The proposal form's help in Debian's chromium (web/static/form.js): the
count follows the typing, the error summary takes the focus and its links
the field's, a double click on 提案を送信 makes one proposal, and at phone
width no page of the form scrolls sideways. A missing chromium fails, never skips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select
from test_browser import _fill_form, browser, served  # noqa: F401

from models.tables import Proposal
from web import create_app
from web.db import get_engine

pytestmark = pytest.mark.browser
CONSENT = "上記の「個人情報の取扱い」に同意します"


@pytest.fixture
def site(tmp_path) -> Iterator[tuple[str, object]]:
    """The app (CSRF on, SQLite) on a free loopback port, and the app, to count what was stored."""
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "browser" * 5})
    with served(app) as url:
        yield url, app


def _proposals(app) -> list[Proposal]:
    with Session(get_engine(app)) as session:
        return list(session.exec(select(Proposal)))


def _focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_the_count_follows_the_typing(browser, site):  # noqa: F811
    url, _ = site
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(url + "/proposals/new")
    counter = page.locator('[data-counter-for="title"]')
    assert counter.inner_text() == "（いま0文字）"
    page.get_by_label("提案タイトル", exact=True).press_sequentially("公園の清掃")
    assert counter.inner_text() == "（いま5文字）"
    # One character as the server counts it (an emoji is two in JavaScript's length).
    page.get_by_label("提案タイトル", exact=True).press_sequentially("🌳")
    assert counter.inner_text() == "（いま6文字）"
    page.get_by_label("提案タイトル", exact=True).fill("あ" * 103)
    assert counter.inner_text() == "（いま103文字：3文字多すぎます）"
    assert "over" in (counter.get_attribute("class") or "")
    # Nothing is cut: all 103 are still there, for the person to shorten.
    assert len(page.get_by_label("提案タイトル", exact=True).input_value()) == 103
    # A line break is one character, as the server counts it after the form is sent.
    page.get_by_label("提案内容", exact=True).fill("一行目\n二行目")
    assert page.locator('[data-counter-for="body"]').inner_text() == "（いま7文字）"
    # Once typing pauses, a screen reader hears the count.
    # Not wait_for_function: its string is eval'd in the page, which the Content-Security-Policy refuses.
    expect(page.locator("#counter-status")).to_contain_text("7文字", timeout=30_000)
    page.close()


def test_the_error_summary_takes_the_focus_and_its_links_the_fields(browser, site):  # noqa: F811
    url, app = site
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(url + "/proposals/new")
    _fill_form(page)
    page.get_by_label("メールアドレス", exact=True).fill("not-an-address")
    page.get_by_label(CONSENT).uncheck()
    with page.expect_navigation():
        page.get_by_role("button", name="入力内容を確認する").click()
    summary = page.get_by_test_id("error-summary")
    assert "入力内容に誤りがあります（2件）" in summary.inner_text()
    assert _focused_id(page) == "error-summary"
    summary.get_by_role("link", name="送信するには、個人情報の取扱いに同意してください。").click()
    assert _focused_id(page) == "consent"
    summary.get_by_role("link", name="メールアドレスの形式が正しくありません。").click()
    assert _focused_id(page) == "email"
    assert _proposals(app) == []
    page.close()


def test_a_double_click_on_send_makes_one_proposal(browser, site):  # noqa: F811
    url, app = site
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(url + "/proposals/new")
    _fill_form(page)
    page.get_by_label("概算予算（千円）（任意）", exact=True).fill("500万円")
    page.get_by_role("button", name="入力内容を確認する").click()
    assert page.get_by_test_id("reading-budget_thousand_yen").inner_text() == "「500万円」を5,000千円（5,000,000円）として受け付けます。"
    # What the page would post again (chromium's back button asks before re-posting a page).
    posted = page.evaluate("Object.fromEntries(new FormData(document.querySelector('form[data-once]')))")
    page.get_by_role("button", name="提案を送信").dblclick()
    page.wait_for_url("**/proposals/receipt")
    number = page.get_by_test_id("receipt-number").inner_text()
    # The same confirmation sent again, with this browser's cookies: the first receipt.
    again = page.request.post(url + "/proposals/new", form={**posted, "action": "submit"})
    assert again.ok and again.url.endswith("/proposals/receipt")
    assert f'data-testid="receipt-number">{number}<' in again.text()
    stored = _proposals(app)
    assert len(stored) == 1 and stored[0].budget_thousand_yen == 5000
    page.close()


def test_at_phone_width_nothing_scrolls_sideways(browser, site):  # noqa: F811
    url, _ = site
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()

    def overflow() -> int:
        return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")

    for path in ("/proposals/new", "/status/recover", "/status/" + "x" * 32, "/no-such-page"):
        page.goto(url + path)
        assert overflow() <= 0, path
    # With every message shown, and words too long for the width.
    page.goto(url + "/proposals/new")
    _fill_form(page)
    long_word = "https://example.jp/" + "a" * 150
    page.get_by_label("提案タイトル", exact=True).fill(long_word)
    page.get_by_label("メールアドレス", exact=True).fill("x" * 300 + "@example.jp")
    page.get_by_label(CONSENT).uncheck()
    with page.expect_navigation():
        page.get_by_role("button", name="入力内容を確認する").click()
    assert page.get_by_test_id("error-summary").is_visible()
    assert overflow() <= 0, "the form with its errors"
    page.get_by_label("提案タイトル", exact=True).fill(long_word[:100])
    page.get_by_label("メールアドレス", exact=True).fill("hanako@example.jp")
    page.get_by_label(CONSENT).check()
    with page.expect_navigation():
        page.get_by_role("button", name="入力内容を確認する").click()
    assert page.get_by_test_id("confirm").is_visible()
    assert overflow() <= 0, "the confirmation page"
    page.get_by_role("button", name="提案を送信").click()
    page.wait_for_url("**/proposals/receipt")
    assert overflow() <= 0, "the receipt"
    context.close()
