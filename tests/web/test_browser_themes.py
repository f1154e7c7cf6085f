"""From a theme to a joint 協働事業, in Debian's chromium (CSRF on, SQLite):
the coordinator finds the 子ども食堂 theme on the dashboard, opens it, ticks
its three proposals and proposes one 協働事業; the proposal page lists the
three, and the dashboard counts one project. A missing chromium fails, never skips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session
from test_browser import _log_in, browser, served  # noqa: F401
from test_theme_edits import add_theme_proposals
from webdata import PASSWORD

from office.accounts import create_user
from web import create_app
from web.db import get_engine, get_matching

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path) -> Iterator[str]:
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "browser" * 5})
    with Session(get_engine(app)) as session:
        create_user(session=session, username="coord", password=PASSWORD)
        add_theme_proposals(session)
    get_matching(app).rematch(engine=get_engine(app), top_k=3)
    with served(app) as url:
        yield url


def test_from_a_theme_to_a_joint_project(browser, site):  # noqa: F811
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(site + "/login")
    _log_in(page)
    page.wait_for_url("**/dashboard**")
    themes = page.get_by_test_id("themes")
    assert themes.get_by_test_id("theme-row").first.inner_text().startswith("子ども・食堂・ネットワーク：3団体")
    themes.get_by_role("link", name="子ども・食堂・ネットワーク").click()
    page.wait_for_url("**/themes/**")
    assert page.get_by_test_id("theme-label").inner_text() == "子ども・食堂・ネットワーク"
    for title in ("子ども食堂のネットワーク", "子ども食堂の連携", "子ども食堂を広げる"):
        page.get_by_label(title).check()
    joint = page.get_by_test_id("joint-form")
    joint.get_by_label("協働事業名").fill("子ども食堂ネットワーク事業")
    joint.get_by_label("協定締結日").fill("2009-06-01")
    joint.get_by_role("button", name="協働事業を提案する").click()
    page.wait_for_url("**/review/proposals/**")
    assert "3件の提案による協働事業「子ども食堂ネットワーク事業」を記録しました。" in page.locator(".flash").first.inner_text()
    section = page.get_by_test_id("joint-project")
    assert section.get_by_test_id("joint-project-name").inner_text() == "子ども食堂ネットワーク事業"
    assert section.get_by_test_id("joint-project-proposal").count() == 3
    page.goto(site + "/dashboard")
    assert page.get_by_test_id("projects-launched").inner_text() == "1"
