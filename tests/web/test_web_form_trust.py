"""A form NPOs can trust (docs/form.md): the 個人情報の取扱い notice and its
consent, limits stated with a count, input normalised and shown as read, one
error summary, one proposal per confirmation, a rate limit on final sending
only, plain Japanese error pages, and a new status link for a lost one."""

from __future__ import annotations

import re

import pytest
from jinja2 import StrictUndefined
from sqlmodel import col, select
from webdata import PROPOSAL

from models.labels import AUDIT_ACTIONS
from models.outbox import KINDS
from models.tables import PROPOSAL_LIMITS, AuditEvent, Proposal
from models.workflow_tables import MailMessage
from office.intake import reissue_status_link
from web import create_app
from web.db import dispose
from web.forms import BUDGET_FORMAT_MESSAGE, parse_thousand_yen
from web.mail import render_message

NO_CONSENT = {k: v for k, v in PROPOSAL.items() if k != "consent"}
API_PROPOSAL = {**NO_CONSENT, "budget_thousand_yen": 300}


def _once(html: str) -> str:
    return re.search(r'name="once" value="([^"]+)"', html).group(1)


def _confirm(client, **overrides):
    page = client.post("/proposals/new", data={**PROPOSAL, **overrides, "action": "confirm"})
    assert page.status_code == 200, page.data.decode()[:3000]
    return page.data.decode()


def _hidden(html: str) -> dict[str, str]:
    """What the confirmation page posts back: its hidden inputs."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def _proposals(session) -> list[Proposal]:
    session.expire_all()
    return list(session.exec(select(Proposal)))


def _limited_app(database_url, tmp_path, limit: str):
    return create_app({"INSTANCE_PATH": str(tmp_path / "rl"), "DATABASE_URL": database_url, "SECRET_KEY": "t" * 32,
                       "WTF_CSRF_ENABLED": False, "SUBMIT_RATE_LIMIT": limit})


# -- 個人情報の取扱い and the consent ---------------------------------------------


def test_the_form_says_what_is_kept_who_sees_it_and_how_long(app, client):
    app.config.update(SUPPORT_OFFICE_CONTACT="市民活動支援室 042-000-0000", PRIVACY_RETENTION="事業の終了後3年間")
    html = client.get("/proposals/new").data.decode()
    assert ">個人情報の取扱い</h2>" in html
    assert "預かる情報" in html and "見る人" in html and "保存する期間" in html
    assert 'data-testid="retention">事業の終了後3年間（市民活動支援室が定めた期間です）' in html
    assert "市民活動支援室 042-000-0000" in html
    assert re.search(r'<input[^>]*id="consent"[^>]*type="checkbox"[^>]*value="y"', html)


def test_consent_is_required_with_the_message_beside_it(client, session):
    page = client.post("/proposals/new", data={**NO_CONSENT, "action": "confirm"})
    html = page.data.decode()
    assert page.status_code == 400 and 'data-testid="confirm"' not in html
    assert 'id="consent-error">送信するには、個人情報の取扱いに同意してください。' in html
    consent = re.search(r'<input[^>]*id="consent"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in consent and "consent-error" in consent
    assert client.post("/proposals/new", data=NO_CONSENT).status_code == 400  # a direct post too
    assert _proposals(session) == []


def test_the_api_takes_no_consent_key(client):
    # A system submits there; its operator answers for the consent (docs/form.md).
    assert client.post("/api/v1/proposals", json=API_PROPOSAL).status_code == 201
    refused = client.post("/api/v1/proposals", json={**API_PROPOSAL, "consent": "y"})
    assert refused.status_code == 400 and "consent" in refused.json["fields"]


# -- limits, counts and normalising ------------------------------------------


def test_every_limit_is_stated_with_a_count_and_nothing_is_cut(client):
    html = client.get("/proposals/new").data.decode()
    for name, rule in PROPOSAL_LIMITS.items():
        if rule.max_length is None:
            continue
        hint = re.search(rf'<p class="hint" id="{name}-hint">(.*?)</p>', html, re.S).group(1)
        assert f"{rule.max_length:,}文字以内" in hint, name
        assert f'data-counter-for="{name}" data-max="{rule.max_length}">（いま0文字）' in hint, name
        field = re.search(rf'<(?:input|textarea)[^>]*id="{name}"[^>]*>', html).group(0)
        assert f"{name}-hint" in field, name
    # A maxlength attribute would make the browser cut a long paste without a word.
    assert "maxlength" not in html
    assert '<script src="/static/form.js" defer></script>' in html
    assert '100,000,000千円まで' in html
    budget = re.search(r'<input[^>]*id="budget_thousand_yen"[^>]*>', html).group(0)
    assert 'type="text"' in budget  # a number input refuses 「500万」


def test_the_count_is_the_servers_when_too_long(client):
    html = client.post("/proposals/new", data={**PROPOSAL, "title": "あ" * 103, "action": "confirm"}).data.decode()
    assert "（いま103文字：3文字多すぎます）" in html and 'value="' + "あ" * 103 + '"' in html
    assert 'id="title-error">提案タイトルは100文字以内で入力してください。' in html


def test_a_line_break_counts_as_one_character(client, session):
    body = "一行目\r\n" + "あ" * 7996  # 8000 characters as the page counts them, 8001 with the CR
    assert client.post("/proposals/new", data={**PROPOSAL, "body": body}).status_code == 303
    assert _proposals(session)[0].body == "一行目\n" + "あ" * 7996


def test_full_width_input_is_normalised_and_shown_so(client, session):
    html = _confirm(client, email="ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ", phone="０３ー１２３４ー５６７８",
                    budget_thousand_yen="１，５００")
    assert 'data-testid="confirm-email">hanako@example.jp<' in html
    assert "「ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ」を半角に直して受け付けます。" in html
    assert 'data-testid="confirm-phone">03-1234-5678<' in html
    assert 'data-testid="confirm-budget_thousand_yen">1,500 千円<' in html
    assert "「１，５００」を1,500千円（1,500,000円）として受け付けます。" in html
    posted = _hidden(html)
    assert (posted["email"], posted["phone"], posted["budget_thousand_yen"]) == ("hanako@example.jp", "03-1234-5678", "1500")
    assert client.post("/proposals/new", data={**posted, "action": "submit"}).status_code == 303
    stored = _proposals(session)[0]
    assert (stored.email, stored.phone, stored.budget_thousand_yen) == ("hanako@example.jp", "03-1234-5678", 1500)


def test_man_yen_is_read_as_thousands_and_the_page_says_so(client):
    html = _confirm(client, budget_thousand_yen="500万円")
    assert 'data-testid="confirm-budget_thousand_yen">5,000 千円<' in html
    assert "「500万円」を5,000千円（5,000,000円）として受け付けます。" in html
    assert _hidden(html)["budget_thousand_yen"] == "5000"
    plain = _confirm(client, budget_thousand_yen="300")
    assert 'data-testid="reading-budget_thousand_yen">300千円（300,000円）として受け付けます。' in plain


@pytest.mark.parametrize("typed,thousands", [
    ("1500", 1500), ("1,500", 1500), ("１，５００", 1500), ("1,500千円", 1500), ("1500千", 1500),
    ("500万", 5000), ("500万円", 5000), ("５００万円", 5000), ("1.5万円", 15), ("1,200万", 12000),
    ("3,000,000円", 3000), (" 500 万円 ", 5000), ("0", 0), ("-5", -5),
])
def test_budget_parsing(typed, thousands):
    assert parse_thousand_yen(typed) == thousands


@pytest.mark.parametrize("typed", ["1,5", "15,00", "1.5", "1,500円", "たくさん", "5百万", "1.23456万", "万円", "1e3"])
def test_budget_that_is_no_whole_number_of_thousands_is_refused(typed):
    with pytest.raises(ValueError, match="千円単位"):
        parse_thousand_yen(typed)


def test_a_refused_budget_gets_one_message(client):
    html = client.post("/proposals/new", data={**PROPOSAL, "budget_thousand_yen": "1,500円"}).data.decode()
    error = re.search(r'id="budget_thousand_yen-error">([^<]*)<', html).group(1)
    assert error == BUDGET_FORMAT_MESSAGE and 'value="1,500円"' in html  # kept as typed, to correct
    over = client.post("/proposals/new", data={**PROPOSAL, "budget_thousand_yen": "20,000,000万円"}).data.decode()
    assert 'id="budget_thousand_yen-error">概算予算は0から100,000,000千円の整数で入力してください。<' in over


# -- the error summary --------------------------------------------------------


def test_the_error_summary_links_to_each_field_and_takes_the_focus(client):
    data = {**NO_CONSENT, "email": "x" * 251 + "@bad", "title": "", "collaboration_type": "", "action": "confirm"}
    html = client.post("/proposals/new", data=data).data.decode()
    summary = re.search(r'<div class="error-summary"[^>]*>(.*?)</div>', html, re.S)
    assert summary is not None
    opening = summary.group(0).split(">")[0]
    assert 'tabindex="-1"' in opening and "autofocus" in opening and 'id="error-summary"' in opening
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', summary.group(1))
    assert [target for target, _ in links] == ["email", "title", "collaboration_type-0", "consent"]
    assert "（4件）" in summary.group(1)
    for target, _ in links:
        assert f'id="{target}"' in html, target
    # The address is too long and malformed: one message, the first problem.
    assert len(re.findall(r'id="email-error"', html)) == 1
    assert 'id="email-error">メールアドレスは254文字以内で入力してください。<' in html
    assert dict(links)["email"] == "メールアドレスは254文字以内で入力してください。"


def test_a_message_without_its_label_is_named_in_the_summary(client):
    html = client.post("/proposals/new", data={**PROPOSAL, "title": "公園\x85清掃"}).data.decode()
    assert '<a href="#title">提案タイトル：使用できない制御文字が含まれています。</a>' in html


# -- one proposal per confirmation ------------------------------------------


def test_the_same_confirmation_posted_twice_makes_one_proposal(client, session):
    posted = {**_hidden(_confirm(client)), "action": "submit"}
    first = client.post("/proposals/new", data=posted)
    assert first.status_code == 303
    receipt = client.get(first.headers["Location"]).data.decode()
    number = re.search(r'data-testid="receipt-number">([^<]+)<', receipt).group(1)
    again = client.post("/proposals/new", data=posted)  # the back button, then 送信 again
    assert again.status_code == 303
    shown = client.get(again.headers["Location"]).data.decode()
    assert re.search(r'data-testid="receipt-number">([^<]+)<', shown).group(1) == number
    assert "この提案は送信済みです。受付番号は前回と同じです" in shown
    assert len(_proposals(session)) == 1
    # A new confirmation page is a new proposal.
    assert client.post("/proposals/new", data={**_hidden(_confirm(client)), "action": "submit"}).status_code == 303
    assert len(_proposals(session)) == 2


def test_the_same_confirmation_from_two_requests_at_once_makes_one_proposal(app, client, session):
    # The second request of a double click carries the cookie of before the first answered.
    posted = {**_hidden(_confirm(client)), "action": "submit"}
    other = app.test_client()
    assert client.post("/proposals/new", data=posted).status_code == 303
    second = other.post("/proposals/new", data=posted)
    assert second.status_code == 409
    html = second.data.decode()
    assert "<h1>この提案は送信済みです</h1>" in html and "二重には登録していません" in html
    assert len(_proposals(session)) == 1


def test_a_forged_or_expired_confirmation_is_confirmed_again(client, session):
    posted = {**_hidden(_confirm(client)), "action": "submit", "once": "forged.token.value"}
    page = client.post("/proposals/new", data=posted)
    html = page.data.decode()
    assert page.status_code == 200 and 'data-testid="confirm"' in html
    assert "確認画面の有効期限が切れたため、まだ送信していません" in html
    assert _proposals(session) == []
    assert client.post("/proposals/new", data={**_hidden(html), "action": "submit"}).status_code == 303
    assert len(_proposals(session)) == 1


def test_the_receipt_links_to_the_recovery_page(client, submitted):
    html = client.get("/proposals/receipt").data.decode()
    assert 'href="/status/recover" data-testid="recover-link"' in html


# -- the rate limit counts final sending only ----------------------------------


def test_the_rate_limit_counts_only_final_submissions(database_url, tmp_path):
    app = _limited_app(database_url, tmp_path, "2/minute")
    client = app.test_client()
    try:
        for _ in range(4):  # confirm, edit and error rounds: a person correcting the form
            assert client.post("/proposals/new", data={**PROPOSAL, "action": "confirm"}).status_code == 200
            assert client.post("/proposals/new", data={**PROPOSAL, "action": "edit"}).status_code == 200
            assert client.post("/proposals/new", data={**PROPOSAL, "title": "", "action": "confirm"}).status_code == 400
        posted = {**_hidden(_confirm(client)), "action": "submit"}
        assert client.post("/proposals/new", data=posted).status_code == 303
        assert client.post("/proposals/new", data=posted).status_code == 303  # the first's receipt: not counted
        assert client.post("/proposals/new", data={**_hidden(_confirm(client)), "action": "submit"}).status_code == 303
        refused = client.post("/proposals/new", data={**_hidden(_confirm(client)), "action": "submit"})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    finally:
        dispose(app)


def test_the_429_page_says_in_japanese_how_long_to_wait(database_url, tmp_path):
    app = _limited_app(database_url, tmp_path, "1/hour")
    client = app.test_client()
    try:
        assert client.post("/proposals/new", data=PROPOSAL).status_code == 303
        page = client.post("/proposals/new", data=PROPOSAL)
        html = page.data.decode()
        assert page.status_code == 429
        wait = int(page.headers["Retry-After"])
        assert 3500 <= wait <= 3600
        assert "<h1>送信が多すぎます</h1>" in html and "約1時間待ってから、もう一度お試しください。" in html
        assert "入力した内容は、まだ送信されていません" in html
        assert "429 エラー" not in html and "<h1>429" not in html
    finally:
        dispose(app)


def test_error_pages_say_what_happened(client):
    page = client.get("/no-such-page")
    html = page.data.decode()
    assert page.status_code == 404
    assert "<h1>ページが見つかりません</h1>" in html and "<title>ページが見つかりません" in html
    assert "404 エラー" not in html and "エラー番号 404" in html
    assert "/status/recover" not in html  # the way to a new link is for a status link's 404
    wrong = client.delete("/proposals/new")
    assert wrong.status_code == 405 and "<h1>この方法ではアクセスできません</h1>" in wrong.data.decode()


# -- a lost status link --------------------------------------------------------


def _recover(client, receipt_number: str, email: str):
    return client.post("/status/recover", data={"receipt_number": receipt_number, "email": email})


def _link_mail(session) -> list[MailMessage]:
    session.expire_all()
    return list(session.exec(select(MailMessage).where(col(MailMessage.kind) == "status_link")))


def test_the_status_404_leads_to_the_recovery_page(client, submitted):
    html = client.get("/status/" + "x" * 32).data.decode()
    assert "<h1>ページが見つかりません</h1>" in html
    assert 'href="/status/recover"' in html and "古いリンクが使えなくなります" in html


def test_the_recovery_page_says_the_old_link_stops_working(client):
    html = client.get("/status/recover").data.decode()
    assert "<h1>状況確認ページのリンクの再発行</h1>" in html
    assert "これまでのリンク（受付のメールにあるものなど）は使えなくなります" in html
    assert '<label for="receipt_number">受付番号</label>' in html and '<label for="email">メールアドレス</label>' in html


def test_matching_and_not_matching_answer_the_same(client, session, submitted):
    answers = []
    for number, email in [(submitted.receipt_number, "someone@example.jp"), ("2026-999999", PROPOSAL["email"]),
                          (submitted.receipt_number, PROPOSAL["email"])]:
        response = _recover(client, number, email)
        assert response.status_code == 303
        answers.append((response.headers["Location"], client.get(response.headers["Location"]).data.decode()))
    assert answers[0] == answers[1] == answers[2]
    assert "一致した場合は、新しい状況確認ページのリンクをそのメールアドレスにお送りしました" in answers[0][1]
    assert len(_link_mail(session)) == 1  # the matching one only


def test_a_new_link_works_and_the_old_one_is_404(client, session, submitted):
    assert client.get(submitted.status_path).status_code == 200
    typed_email = "ＨＡＮＡＫＯ＠ＥＸＡＭＰＬＥ．ＪＰ"  # as typed on a phone: width and case do not matter
    assert _recover(client, submitted.receipt_number.replace("-000", "ー"), typed_email).status_code == 303
    [mail] = _link_mail(session)
    assert (mail.to_address, mail.proposal_id) == (PROPOSAL["email"], submitted.id) and mail.secret
    assert mail.context["receipt_number"] == submitted.receipt_number
    old = client.get(submitted.status_path)
    assert old.status_code == 404 and 'href="/status/recover"' in old.data.decode()
    new = client.get(f"/status/{mail.secret}")
    assert new.status_code == 200 and submitted.receipt_number in new.data.decode()
    events = session.exec(select(AuditEvent).where(col(AuditEvent.action) == "proposal.link_reissued")).all()
    assert [(e.entity_id, e.detail["receipt_number"]) for e in events] == [(str(submitted.id), submitted.receipt_number)]


def test_the_link_mail_renders_with_the_status_url(app, session, submitted):
    assert "status_link" in KINDS and "proposal.link_reissued" in AUDIT_ACTIONS
    assert reissue_status_link(session=session, receipt_number=submitted.receipt_number, email=PROPOSAL["email"])
    [mail] = _link_mail(session)
    app.config["PUBLIC_URL"] = "https://kyodo.example.lg.jp"
    strict = app.jinja_env.overlay(undefined=StrictUndefined)  # the template uses its context only
    variables = {**mail.context, "url": "https://x/status/s", "public_url": "https://x", "office_contact": "支援室"}
    assert strict.get_template("mail/status_link.txt").render(**variables).startswith("Subject: ")
    subject, body = render_message(app, mail)
    assert subject == f"【協働マッチ】状況確認ページの新しいリンク（受付番号 {submitted.receipt_number}）"
    assert f"https://kyodo.example.lg.jp/status/{mail.secret}\n" in body
    assert "これまでのリンク（受付のメールなどにあるもの）は、もう使えません。" in body
    assert body.startswith("NPO法人みどりの輪\n山田花子 様\n")


def test_a_wrong_address_changes_nothing(session, submitted):
    before = session.get(Proposal, submitted.id).status_token_hash
    for email in ("", "other@example.jp", " "):
        assert not reissue_status_link(session=session, receipt_number=submitted.receipt_number, email=email)
    assert not reissue_status_link(session=session, receipt_number="2026-abc", email=PROPOSAL["email"])
    assert not reissue_status_link(session=session, receipt_number="9" * 5000, email=PROPOSAL["email"])
    session.expire_all()
    assert session.get(Proposal, submitted.id).status_token_hash == before
    assert _link_mail(session) == []
    assert session.exec(select(AuditEvent).where(col(AuditEvent.action) == "proposal.link_reissued")).all() == []


def test_the_recovery_form_explains_an_empty_field(client):
    page = client.post("/status/recover", data={"receipt_number": "", "email": ""})
    html = page.data.decode()
    assert page.status_code == 400
    assert 'id="receipt_number-error">受付番号を入力してください。' in html
    assert 'id="email-error">メールアドレスを入力してください。' in html


def test_recovery_is_rate_limited_per_address_and_per_receipt_number(database_url, tmp_path):
    app = _limited_app(database_url, tmp_path, "2/minute")
    client = app.test_client()
    try:
        codes = [_recover(client, "2026-000001", "a@example.jp").status_code for _ in range(3)]
        assert codes == [303, 303, 429]
        assert "<h1>送信が多すぎます</h1>" in _recover(client, "2026-000001", "a@example.jp").data.decode()
        # From other addresses, one receipt number: three an hour, whatever its form.
        codes = [
            client.post("/status/recover", data={"receipt_number": number, "email": "a@example.jp"},
                        environ_base={"REMOTE_ADDR": address}).status_code
            for address, number in [("10.0.0.1", "2026-000002"), ("10.0.0.2", "2026-2"), ("10.0.0.3", "２０２６-02"),
                                    ("10.0.0.4", "2026-000002")]
        ]
        assert codes == [303, 303, 303, 429]
    finally:
        dispose(app)
