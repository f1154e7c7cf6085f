"""Deciding with the keyboard only, in Debian's chromium: ten proposals from the
queue (accept, reject, defer, reject the rest, next), counting key presses and
page loads; then three undos in a row. A missing chromium fails, never skips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select
from test_browser import ARGS, CHROMIUM, _log_in, browser, served  # noqa: F401
from webdata import PASSWORD, PROPOSAL

from models.tables import Decision, Proposal, ProposalCreate
from office.accounts import create_user
from office.intake import receive_proposal
from web import create_app
from web.db import get_engine, get_matching

pytestmark = pytest.mark.browser
# Written for testing: ten short proposals on the bundled catalogue's subjects.
SUBJECTS = ["防災訓練", "子育てサロン", "公園の清掃", "NPOフェスタ", "まちづくり講座",
            "環境学習", "高齢者の見守り", "地域の祭り", "ごみの分別", "市民活動の相談"]


@pytest.fixture
def decided_site(tmp_path) -> Iterator[tuple[str, object]]:
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "browser" * 5, "MATCH_MODE": "lexical"})
    with Session(get_engine(app), expire_on_commit=False) as session:
        create_user(session=session, username="coord", password=PASSWORD)
        for subject in SUBJECTS:
            proposal, _ = receive_proposal(session=session, proposal_in=ProposalCreate.model_validate(
                {**PROPOSAL, "title": f"{subject}の提案", "body": f"{subject}を地域で行います。{PROPOSAL['body']}",
                 "budget_thousand_yen": 100}))
            get_matching(app).suggest_online(session=session, proposal_ids=[proposal.id])
    with served(app) as url:
        yield url, app


def test_ten_proposals_decided_with_the_keyboard_only(browser, decided_site):  # noqa: F811
    url, app = decided_site
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(url + "/login?next=/review/next")
    _log_in(page)
    page.wait_for_url("**/review/proposals/*")
    loads = {"n": 0}
    page.on("load", lambda _page: loads.__setitem__("n", loads["n"] + 1))
    keys = 0
    plan = ["a", "r", "d"]  # the first suggestion: accept, reject or defer; then x: the rest rejected
    seen = []
    for i in range(10):
        page.wait_for_selector("#keyboard-help")
        seen.append(page.locator("h1").inner_text())
        before = page.url
        page.keyboard.press(plan[i % 3])
        keys += 1
        # Locators, not wait_for_function: its string is eval'd in the page, which the CSP refuses.
        page.locator(".focused").first.wait_for()
        page.get_by_test_id("current-verdict").first.wait_for()
        page.keyboard.press("x")  # the rest: 見送り; the proposal is 判断済み and the next one opens
        keys += 1
        page.wait_for_url(lambda address, before=before: address != before)
        page.wait_for_load_state()
    assert keys <= 30 and loads["n"] <= 12, (keys, loads["n"])
    assert len(set(seen)) == 10  # ten different proposals
    assert "未判断の提案はありません" in page.locator(".flash").first.inner_text()
    with Session(get_engine(app)) as session:
        verdicts = [d.verdict for d in session.exec(select(Decision).order_by(Decision.id))]
        assert verdicts.count("accepted") == 4 and verdicts.count("deferred") == 3
        assert session.exec(select(Proposal).where(Proposal.stage != "checking")).first() is None
    queue = browser.new_page()
    queue.context.add_cookies(page.context.cookies())
    queue.goto(url + "/review?reviewed=no")
    assert queue.get_by_test_id("queue-row").count() == 0


def test_three_undos_in_a_row_step_back_three_decisions(browser, decided_site):  # noqa: F811
    url, app = decided_site
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(url + "/login?next=/review/next")
    _log_in(page)
    page.wait_for_url("**/review/proposals/*")
    for key in ("a", "r", "d"):  # three decisions on the first three suggestions, no page load
        count = page.get_by_test_id("current-verdict").count()
        page.keyboard.press(key)
        expect(page.get_by_test_id("current-verdict")).to_have_count(count + 1, timeout=30_000)
    page.reload()
    assert page.get_by_test_id("current-verdict").count() == 3
    for expected in (2, 1, 0):
        # Wait for the page the undo loads (its scripts included): a key pressed
        # while it is still parsing would be lost.
        with page.expect_navigation(wait_until="load"):
            page.keyboard.press("u")
        expect(page.get_by_test_id("current-verdict")).to_have_count(expected, timeout=30_000)
    assert page.get_by_test_id("history-row").count() == 6
    page.goto(url + "/review?reviewed=no")
    assert page.get_by_test_id("queue-row").count() == 10
