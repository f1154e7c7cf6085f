"""The outbox delivered over SMTP to a real server on loopback (tests/mailserver.py):
nothing lost while the server is down, nothing sent twice by racing senders,
the NPO's link in the mail and not in the database, the .eml fallback, the
daily digest. Every message here is test data this module queues itself with
models.outbox.enqueue."""

from __future__ import annotations

import threading
import time as time_module
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import mailserver
import pytest
from factories import create_random_proposal
from jinja2 import StrictUndefined
from mailserver import SmtpServer
from sqlmodel import Session, col, select

import web.mail
from models.audit import list_events
from models.clock import JST, as_utc, to_jst, utcnow
from models.outbox import enqueue, failed_messages
from models.workflow import all_departments
from models.workflow_tables import MailAttempt, MailMessage, OpinionRequestCreate
from office.accounts import create_user
from office.digest import queue_digest
from office.mail import (
    MAX_ATTEMPTS,
    MESSAGE_ID_KEY,
    SECRET_PLACEHOLDER,
    DeliveryReport,
    SmtpTransport,
    claim,
    deliver_due,
    prepare,
)
from office.opinions import OpinionLinks, request_opinions
from web.cli import cli
from web.mail import queue_scheduled, render_message, renderer, send_now, start_background_sender

# The SMTP server fixtures, visible to pytest in this module.
smtp_server = mailserver.smtp_server
smtp_down = mailserver.smtp_down

SENDER = "kyodo-match@city.example.jp"
PUBLIC = "https://kyodo.example.lg.jp"
SECRET = "status-token-abc123"  # a made-up status token (test data)

# Test data: the context each kind's sender gives (models.outbox's contract).
CONTEXTS: dict[str, dict[str, Any]] = {
    "receipt": {"receipt_number": "R2026-0001", "title": "地域の防災講座", "organization": "NPO 防災のまち",
                "representative": "山田 花子"},
    "answer": {"receipt_number": "R2026-0001", "title": "地域の防災講座", "stage_label": "所見照会中",
               "text": "担当課に所見を伺っています。", "published_at": "2026年4月1日"},
    "opinion_request": {"department": "市民協働課", "receipt_number": "R2026-0001", "title": "地域の防災講座",
                        "message": "ご確認ください。", "due": "2026-04-15", "program_names": ["防災訓練"]},
    "reminder": {"department": "市民協働課", "receipt_number": "R2026-0001", "title": "地域の防災講座",
                 "message": "", "due": "2026-04-15", "program_names": []},
    "digest": {"date": "2026-04-16", "overdue": [],
               "new_proposals": [{"receipt_number": "R2026-0001", "title": "地域の防災講座",
                                  "organization": "NPO 防災のまち", "proposal_id": 7}]},
}


@pytest.fixture(autouse=True)
def mail_settings(app):
    app.config.update(PUBLIC_URL=PUBLIC + "/", MAIL_DEFAULT_SENDER=SENDER, SUPPORT_OFFICE_CONTACT="市民活動支援室 042-000-0000")


def queue(session: Session, kind: str = "receipt", to: str = "npo@example.jp", secret: str | None = SECRET) -> int:
    """Queue one message (test data) and commit, as a command would."""
    message = enqueue(session=session, kind=kind, to=to, context=CONTEXTS[kind], secret=secret)
    assert message is not None
    session.commit()
    assert message.id is not None
    return message.id


def deliver(app, server: SmtpServer, now: datetime | None = None) -> DeliveryReport:
    from web.db import get_engine

    transport = SmtpTransport(server.host, server.port, timeout=5)
    return deliver_due(get_engine(app), transport, renderer(app), now=now, sender=SENDER)


def stored(engine, mail_id: int) -> MailMessage:
    with Session(engine) as session:
        message = session.get(MailMessage, mail_id)
        assert message is not None
        session.expunge(message)
        return message


def attempts_of(engine, mail_id: int) -> list[MailAttempt]:
    with Session(engine) as session:
        return list(session.exec(select(MailAttempt).where(col(MailAttempt.mail_id) == mail_id)
                                 .order_by(col(MailAttempt.id))))


@pytest.mark.parametrize("kind", sorted(CONTEXTS))
def test_every_template_renders_its_contract_in_japanese(app, kind):
    """Each template uses only the variables of the contract (StrictUndefined)."""
    secret = SECRET if kind in ("receipt", "opinion_request", "reminder") else None
    message = MailMessage(id=1, kind=kind, to_address="a@example.jp", context=CONTEXTS[kind], secret=secret)
    strict = app.jinja_env.overlay(undefined=StrictUndefined)
    variables = {**CONTEXTS[kind], "url": f"{PUBLIC}/x/{secret}" if secret else None, "public_url": PUBLIC,
                 "office_contact": "支援室"}
    assert strict.get_template(f"mail/{kind}.txt").render(**variables).startswith("Subject: ")
    subject, body = render_message(app, message)
    assert "R2026-0001" in subject or "2026年4月16日" in subject
    assert "\n" not in subject and "None" not in body and "ます。" in body
    assert body.rstrip().endswith("市民活動支援室 042-000-0000")
    if secret:
        assert (f"{PUBLIC}/status/{SECRET}" if kind == "receipt" else f"{PUBLIC}/opinions/{SECRET}") in body
    if kind == "digest":
        assert f"{PUBLIC}/review/proposals/7" in body


def test_a_message_is_delivered_once_with_its_link_and_the_link_is_not_kept(app, engine, session, smtp_server):
    mail_id = queue(session)
    app.config.update(MAIL_SERVER=smtp_server.host, MAIL_PORT=smtp_server.port)

    report = send_now(app)
    assert (report.sent, report.failed, report.waiting) == (1, 0, 0)
    assert report.summary() == "sent 1, failed 0, waiting 0"
    assert send_now(app).sent == 0  # a second round sends nothing again

    [received] = smtp_server.received
    mail = received.message
    assert received.rcpt_tos == ["npo@example.jp"] and received.mail_from == SENDER
    assert mail["Subject"] == "【協働マッチ】ご提案を受け付けました（受付番号 R2026-0001）"
    assert mail["From"] == SENDER and mail["Auto-Submitted"] == "auto-generated"
    text = mail.get_content()
    assert "山田 花子 様" in text and "受け付けました" in text
    assert f"{PUBLIC}/status/{SECRET}" in text

    row = stored(engine, mail_id)
    assert (row.status, row.attempts, row.secret) == ("sent", 1, None)
    assert row.sent_at is not None and row.subject == mail["Subject"]
    assert SECRET not in row.body and SECRET_PLACEHOLDER in row.body
    assert mail["Message-ID"].strip() == row.context[MESSAGE_ID_KEY]
    assert [a.ok for a in attempts_of(engine, mail_id)] == [True]


def test_an_outage_loses_nothing_and_sends_each_message_once(app, engine, session, smtp_down):
    ids = [queue(session, to=f"npo{i}@example.jp") for i in range(3)]
    t0 = utcnow()

    first = deliver(app, smtp_down, now=t0)
    assert (first.sent, first.retrying, first.waiting) == (0, 3, 3)
    for mail_id in ids:
        row = stored(engine, mail_id)
        assert (row.status, row.attempts) == ("pending", 1)
        assert "Connection refused" in row.last_error or "ConnectionRefused" in row.last_error
        assert as_utc(row.next_attempt_at) == t0 + timedelta(minutes=1)
        assert row.subject  # rendered once, before the first attempt
    assert deliver(app, smtp_down, now=t0 + timedelta(seconds=30)).retrying == 0  # not due yet

    assert deliver(app, smtp_down, now=t0 + timedelta(minutes=2)).retrying == 3
    assert {stored(engine, i).attempts for i in ids} == {2}

    smtp_down.start()
    assert deliver(app, smtp_down, now=t0 + timedelta(minutes=3)).sent == 0  # the backoff holds
    back = deliver(app, smtp_down, now=t0 + timedelta(minutes=8))
    assert (back.sent, back.waiting) == (3, 0)
    assert deliver(app, smtp_down, now=t0 + timedelta(days=1)).sent == 0

    counts = smtp_down.count_by_message_id()
    assert sorted(counts.values()) == [1, 1, 1]
    assert set(counts) == {stored(engine, i).context[MESSAGE_ID_KEY] for i in ids}
    for mail_id in ids:
        row = stored(engine, mail_id)
        assert (row.status, row.attempts, row.secret) == ("sent", 3, None)
        assert [a.ok for a in attempts_of(engine, mail_id)] == [False, False, True]


def test_racing_senders_never_send_a_message_twice(app, engine, session, smtp_server):
    ids = [queue(session, to=f"npo{i}@example.jp") for i in range(20)]
    barrier = threading.Barrier(2)
    reports: list[DeliveryReport] = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            barrier.wait()
            reports.append(deliver(app, smtp_server))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(reports) == 2
    assert sum(r.sent for r in reports) == 20
    assert len(smtp_server.messages) == 20
    assert set(smtp_server.count_by_message_id().values()) == {1}
    assert {stored(engine, i).status for i in ids} == {"sent"}


def test_the_background_sender_survives_a_failed_round(app, engine, session, smtp_server, monkeypatch):
    mail_id = queue(session)
    app.config.update(MAIL_SERVER=smtp_server.host, MAIL_PORT=smtp_server.port)
    rounds: list[int] = []

    def first_round_fails(app_):
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("the database went away")
        return send_now(app_)

    monkeypatch.setattr(web.mail, "send_now", first_round_fails)
    sender = start_background_sender(app, interval=0.05)
    try:
        deadline = time_module.monotonic() + 15
        while stored(engine, mail_id).status != "sent" and time_module.monotonic() < deadline:
            time_module.sleep(0.05)
    finally:
        sender.stop()
        sender.join(timeout=10)
    assert stored(engine, mail_id).status == "sent" and len(rounds) >= 2
    assert sender.daemon and not sender.is_alive()
    assert len(smtp_server.messages) == 1


def test_a_claim_is_taken_once(engine, session):
    mail_id = queue(session)
    now = utcnow()
    with Session(engine) as one, Session(engine) as two:
        assert claim(one, mail_id, now) is True
        assert claim(two, mail_id, now) is False


def test_a_message_refused_every_time_becomes_failed(app, engine, session, smtp_server):
    mail_id = queue(session, to="refuse@example.jp")
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = deliver(app, smtp_server, now=now)
        row = stored(engine, mail_id)
        assert row.attempts == attempt
        assert row.status == ("failed" if attempt == MAX_ATTEMPTS else "pending")
        now += timedelta(hours=13)  # beyond the longest backoff
    assert (report.failed, report.retrying) == (1, 0)
    assert deliver(app, smtp_server, now=now + timedelta(days=30)).failed == 0  # given up: no more attempts
    row = stored(engine, mail_id)
    assert "550" in row.last_error and row.secret == SECRET  # kept: it never reached the NPO
    assert len(attempts_of(engine, mail_id)) == MAX_ATTEMPTS
    assert [m.id for m in failed_messages(session=session)] == [mail_id]
    assert smtp_server.messages == []


def test_a_partly_refused_message_is_sent_and_says_who_was_refused(app, engine, session, smtp_server):
    mail_id = queue(session, to="ok@example.jp, refuse@example.jp")
    assert deliver(app, smtp_server).sent == 1
    [received] = smtp_server.received
    assert received.rcpt_tos == ["ok@example.jp"]
    row = stored(engine, mail_id)
    assert row.status == "sent" and "refuse@example.jp" in row.last_error  # not retried: ok@ has it


def test_a_sender_that_died_after_sending_is_the_one_window_for_a_duplicate(app, engine, session, smtp_server):
    """Claimed, sent, then the process died before marking it: after the
    claim's timeout the message goes again, with the same Message-ID."""
    mail_id = queue(session)
    t0 = utcnow()
    with Session(engine) as crashed:
        assert claim(crashed, mail_id, t0)
        message = crashed.get(MailMessage, mail_id)
        assert message is not None
        transport = SmtpTransport(smtp_server.host, smtp_server.port, timeout=5)
        transport.send(prepare(crashed, message, renderer(app), SENDER, t0))
        transport.close()  # the socket; the process "dies" here, before marking the message sent
    assert deliver(app, smtp_server, now=t0 + timedelta(minutes=5)).sent == 0  # still claimed
    report = deliver(app, smtp_server, now=t0 + timedelta(minutes=11))
    assert (report.recovered, report.sent) == (1, 1)
    assert list(smtp_server.count_by_message_id().values()) == [2]
    row = stored(engine, mail_id)
    assert (row.status, row.attempts) == ("sent", 2)
    assert [a.ok for a in attempts_of(engine, mail_id)] == [False, True]


def test_without_a_mail_server_kyodo_mail_send_writes_eml_files(app, engine, session, runner, monkeypatch):
    monkeypatch.delenv("KYODO_MAIL_SERVER", raising=False)
    monkeypatch.setenv("KYODO_PUBLIC_URL", PUBLIC)
    mail_id = queue(session)

    result = runner.invoke(cli, ["mail", "send"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "sent 1, failed 0, waiting 0"

    from email import message_from_bytes, policy

    eml = Path(app.instance_path) / "outbox" / f"{mail_id}.eml"
    mail = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert mail["Subject"] == "【協働マッチ】ご提案を受け付けました（受付番号 R2026-0001）"
    assert f"{PUBLIC}/status/{SECRET}" in mail.get_content()  # type: ignore[attr-defined]
    assert stored(engine, mail_id).secret is None

    listed = runner.invoke(cli, ["mail", "list"])
    assert listed.exit_code == 0 and f"{mail_id}\treceipt\tnpo@example.jp\tsent\t1\t" in listed.output
    assert runner.invoke(cli, ["mail", "list", "--status", "failed"]).output == ""


def _coordinators(session: Session) -> None:
    """Test data: one coordinator with an address, one without, one inactive."""
    for name, email, active in (("coord", "coord@example.jp", True), ("noaddress", "", True),
                                ("retired", "retired@example.jp", False)):
        user = create_user(session=session, username=name, password="password-123")
        user.email, user.is_active = email, active
        session.add(user)
    session.commit()


def test_the_digest_goes_once_a_day_with_what_is_new(app, session):
    today = to_jst(utcnow()).date()
    first = create_random_proposal(session)
    assert queue_digest(session=session, today=today) is None  # nobody to send it to
    _coordinators(session)

    digest = queue_digest(session=session, today=today)
    assert digest is not None and digest.to_address == "coord@example.jp"
    assert [p["proposal_id"] for p in digest.context["new_proposals"]] == [first.id]
    assert queue_digest(session=session, today=today) is None  # once a day
    assert queue_digest(session=session, today=today + timedelta(days=1)) is None  # nothing new, nothing late

    second = create_random_proposal(session, "環境")
    department = all_departments(session=session)[0]
    request_opinions(session=session, proposal=second, requests_in=[OpinionRequestCreate(department=department.name)],
                     links=OpinionLinks("test"), today=today - timedelta(days=30))
    nxt = queue_digest(session=session, today=today + timedelta(days=1))
    assert nxt is not None
    assert [p["proposal_id"] for p in nxt.context["new_proposals"]] == [second.id]  # not the first again
    assert [(r["department"], r["proposal_id"]) for r in nxt.context["overdue"]] == [(department.name, second.id)]
    assert [e.detail["date"] for e in list_events(session=session, action="mail.digest")] == [
        (today + timedelta(days=1)).isoformat(), today.isoformat()]

    subject, body = render_message(app, nxt)
    assert "新しい提案 1 件、期限切れの所見照会 1 件" in subject
    assert f"{PUBLIC}/review/proposals/{second.id}" in body and department.name in body


def test_kyodo_mail_digest_queues_today_s_digest_once(app, session, runner):
    _coordinators(session)
    create_random_proposal(session)
    result = runner.invoke(cli, ["mail", "digest"])
    assert result.exit_code == 0 and "digest queued" in result.output and "coord@example.jp" in result.output
    again = runner.invoke(cli, ["mail", "digest"])
    assert again.exit_code == 0 and "no digest queued" in again.output


def test_the_sender_queues_the_digest_after_eight_in_japan(app, session):
    _coordinators(session)
    create_random_proposal(session)
    day = to_jst(utcnow()).date()

    def digests() -> int:
        return len(list(session.exec(select(MailMessage).where(col(MailMessage.kind) == "digest"))))

    queue_scheduled(app, datetime.combine(day, time(7, 59), JST))
    assert digests() == 0
    queue_scheduled(app, datetime.combine(day, time(8, 0), JST))
    queue_scheduled(app, datetime.combine(day, time(17, 0), JST))
    assert digests() == 1
