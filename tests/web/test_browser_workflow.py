"""The collaboration workflow end to end in Debian's chromium, with the mail
going through a real SMTP server on loopback (aiosmtpd) and the app's own
background sender, as under ``kyodo serve``: an NPO submits on a phone and
its receipt e-mail brings a working status link; the coordinator asks 環境課
for its 所見; the department answers from the link in its e-mail without an
account; the coordinator publishes the answer; the NPO's page shows it and a
second e-mail arrives. The link then refuses a second answer, a tampered and
an expired one. A missing chromium fails, never skips."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from mailserver import SmtpServer
from sqlmodel import Session, select
from test_browser import ARGS, CHROMIUM, _fill_form, _log_in, browser, screenshots, served  # noqa: F401
from webdata import PASSWORD, PROPOSAL

from models.clock import utcnow
from models.tables import Department, OpinionRequest
from office.accounts import create_user
from office.opinions import SALT
from web import create_app
from web.db import get_engine
from web.mail import start_background_sender

pytestmark = pytest.mark.browser
DEPARTMENT_MAIL = "kankyo@city.example.jp"  # test data, not a real address


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def site(tmp_path, smtp) -> Iterator[tuple[str, object]]:
    """The app (CSRF on, SQLite) on a free port, mailing through ``smtp``, with its sender running."""
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "browser" * 5,
                      "MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port})
    with Session(get_engine(app)) as session:
        create_user(session=session, username="coord", password=PASSWORD)
        department = session.exec(select(Department).where(Department.name == "環境課")).one()
        department.emails = DEPARTMENT_MAIL
        session.add(department)
        session.commit()
    with served(app) as url:
        app.config["PUBLIC_URL"] = url  # the links in the e-mails
        sender = start_background_sender(app, interval=0.3)
        yield url, app
        sender.stop()


def _mail_to(smtp: SmtpServer, address: str, count: int, timeout: float = 20) -> list[EmailMessage]:
    """The messages ``address`` has received once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in smtp.messages if address in str(m["To"])]
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{address} received {len(found)} message(s), expected {count}")


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _link(message: EmailMessage, path: str) -> str:
    found = re.search(r"https?://\S+" + path + r"[A-Za-z0-9_.\-]+", _body(message))
    assert found, _body(message)
    return found.group(0)


class _AgedSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int((utcnow() - timedelta(days=31)).timestamp())


def test_the_workflow_from_submission_to_a_published_answer(browser, site, smtp, screenshots):  # noqa: F811
    url, app = site
    phone = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True)
    npo = phone.new_page()
    npo.goto(url + "/proposals/new")
    _fill_form(npo)
    npo.get_by_role("button", name="入力内容を確認する").click()
    npo.get_by_role("button", name="提案を送信").click()
    npo.wait_for_url("**/proposals/receipt")
    receipt_number = npo.get_by_test_id("receipt-number").inner_text()

    [receipt] = _mail_to(smtp, PROPOSAL["email"], 1)
    assert receipt_number in str(receipt["Subject"]) + _body(receipt)
    status_link = _link(receipt, "/status/")
    npo.goto(status_link)
    assert npo.get_by_test_id("status").inner_text() == "受付"

    coordinator = browser.new_page(viewport={"width": 1100, "height": 900})
    coordinator.goto(url + "/login")
    _log_in(coordinator)
    coordinator.wait_for_url("**/dashboard**")
    coordinator.goto(url + "/review")
    coordinator.get_by_role("link", name=PROPOSAL["title"]).click()
    opinions = coordinator.get_by_test_id("opinions")
    opinions.get_by_label("環境課", exact=True).check()
    opinions.get_by_label("依頼文").fill("公園での環境学習について、協働の可能性をお聞かせください。")
    with coordinator.expect_navigation():
        opinions.get_by_role("button", name="所見を依頼する").click()
    assert "1件の担当課に所見を依頼しました" in coordinator.locator(".flash").first.inner_text()
    assert "所見照会中" in coordinator.get_by_test_id("proposal-stage").inner_text()

    [request_mail] = _mail_to(smtp, DEPARTMENT_MAIL, 1)
    department_link = _link(request_mail, "/opinions/")
    department = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()  # no login
    department.goto(department_link)
    assert PROPOSAL["title"] in department.locator("h2").first.inner_text()
    page_text = department.locator("main").inner_text()
    assert PROPOSAL["email"] not in page_text and PROPOSAL["phone"] not in page_text
    department.get_by_label("条件付きで協働できる").check()
    department.get_by_label("コメント（任意）").fill("夏休みの期間であれば、環境学習として共催できます。")
    department.get_by_label("考えられる協働の形（任意）").select_option(label="共催")
    department.get_by_label("回答者（任意）").fill("環境課 鈴木")
    department.screenshot(path=str(screenshots / "opinion-answer.png"), full_page=True)
    with department.expect_navigation():
        department.get_by_role("button", name="所見を送信する").click()
    assert department.get_by_test_id("answered").is_visible()
    assert department.get_by_test_id("opinion").inner_text() == "条件付きで協働できる"

    coordinator.reload()
    assert coordinator.get_by_test_id("opinion").first.inner_text() == "条件付きで協働できる"
    answer = coordinator.get_by_test_id("answer")
    answer.get_by_label("お知らせする段階").select_option("adopted")
    answer.get_by_label("回答文（理由・次の手順・連絡先）").fill(
        "採択します。環境課と夏休みの環境学習を共催する方向で、協定の準備を進めます。")
    with coordinator.expect_navigation():
        answer.get_by_role("button", name="公開して提案者に知らせる").click()
    assert coordinator.get_by_test_id("published-answer").count() == 1

    npo.goto(status_link)
    assert npo.get_by_test_id("status").inner_text() == "採択"
    assert "協定の準備を進めます" in npo.get_by_test_id("answer-text").inner_text()
    assert "夏休みの期間であれば" not in npo.locator("main").inner_text()  # 所見 only when quoted
    npo.screenshot(path=str(screenshots / "status-answered.png"), full_page=True)
    second = _mail_to(smtp, PROPOSAL["email"], 2)[1]
    assert "採択" in _body(second) and "協定の準備を進めます" in _body(second)

    # The link answers once; a tampered one and an expired one are refused.
    token = department_link.rsplit("/", 1)[1]
    again = department.request.post(f"{url}/api/v1/opinions/{token}", data={"opinion": "difficult"})
    assert again.status == 409
    department.goto(department_link[:-4] + ("abcd" if not department_link.endswith("abcd") else "wxyz"))
    assert "正しくありません" in department.get_by_test_id("refused").inner_text()
    with Session(get_engine(app)) as session:
        req = session.exec(select(OpinionRequest)).one()
        assert (req.opinion, req.status) == ("conditional", "answered")
        expired = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT, signer=_AgedSigner).dumps([req.id, req.link_nonce])
    response = department.goto(f"{url}/opinions/{expired}")
    assert response is not None and response.status == 410
    assert "有効期限" in department.get_by_test_id("refused").inner_text()
    # Each message went out exactly once.
    assert max(smtp.count_by_message_id().values()) == 1 and len(smtp.messages) == 3
    phone.close()
