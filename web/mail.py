"""Rendering and delivering the outbox from the app: the templates
``templates/mail/<kind>.txt``, the transport of the MAIL_* settings, and the
sender the ``kyodo serve`` thread and ``kyodo mail send`` run (docs/mail.md)."""

from __future__ import annotations

import threading
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask
from sqlmodel import Session

from models.clock import to_jst, utcnow
from models.outbox import KINDS
from models.workflow_tables import MailMessage
from office.digest import queue_digest
from office.mail import DeliveryReport, FileTransport, Render, SmtpTransport, Transport, deliver_due
from office.opinions import OpinionLinks, queue_reminders
from web.db import get_engine

DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"  # kyodo serve's own address
DIGEST_HOUR = 8  # JST: the digest waits for the working day
SMTP_TIMEOUT = 30.0
# Where each kind's link goes; the secret is the message's own (MailMessage.secret).
LINK_PATHS = {"receipt": "/status/", "opinion_request": "/opinions/", "reminder": "/opinions/"}


def public_url(app: Flask) -> str:
    return (app.config.get("PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/")


def message_url(app: Flask, message: MailMessage) -> str | None:
    """The link the message carries (the NPO's status page, a department's opinion page)."""
    # A re-issued status link goes where the receipt's went: the NPO's status page.
    path = LINK_PATHS.get("receipt" if message.kind == "status_link" else message.kind)
    if path is None or not message.secret:
        return None
    return public_url(app) + path + message.secret


def split_subject(text: str) -> tuple[str, str]:
    """A rendered template: ``Subject: …``, a blank line, the body.

    >>> split_subject("Subject: 件名\\n\\n本文\\n\\n")
    ('件名', '本文\\n')
    """
    first, _, rest = text.lstrip("\n").partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError("a mail template starts with 'Subject: '")
    subject = " ".join(first[len("Subject:"):].split())  # one line: a header
    return subject, rest.strip("\n").rstrip() + "\n"


def render_message(app: Flask, message: MailMessage) -> tuple[str, str]:
    """(subject, body) of a message, from ``mail/<kind>.txt`` with the app's Jinja
    environment (Flask autoescapes .html and .xml only: a .txt is plain text)."""
    if message.kind not in KINDS:
        raise ValueError(f"unknown mail kind {message.kind!r}")
    variables: dict[str, Any] = {
        **message.context,
        "url": message_url(app, message),
        "public_url": public_url(app),
        "office_contact": app.config["SUPPORT_OFFICE_CONTACT"],
    }
    with app.app_context():
        text = app.jinja_env.get_template(f"mail/{message.kind}.txt").render(**variables)
    return split_subject(text)


def renderer(app: Flask) -> Render:
    """render_message bound to the app: what office.mail.deliver_due calls."""
    return partial(render_message, app)


def make_transport(app: Flask) -> Transport:
    """SMTP when MAIL_SERVER is set; otherwise .eml files in instance/outbox/."""
    config = app.config
    if config.get("MAIL_SERVER"):
        return SmtpTransport(config["MAIL_SERVER"], int(config["MAIL_PORT"]), bool(config["MAIL_USE_TLS"]),
                             config["MAIL_USERNAME"], config["MAIL_PASSWORD"], SMTP_TIMEOUT)
    return FileTransport(Path(app.instance_path) / "outbox", app.logger)


def queue_scheduled(app: Flask, now: datetime | None = None) -> None:
    """The reminders of overdue opinion requests, and the digest once a day after 08:00 JST."""
    now = now or utcnow()
    today = to_jst(now).date()  # due dates and the digest's day are Japan's
    links = OpinionLinks(app.config["SECRET_KEY"], app.config["OPINION_LINK_DAYS"])
    with Session(get_engine(app), expire_on_commit=False) as session:
        queue_reminders(session=session, links=links, today=today)
        if to_jst(now).hour >= DIGEST_HOUR:
            queue_digest(session=session, today=today, now=now)


def send_now(app: Flask, now: datetime | None = None) -> DeliveryReport:
    """Queue what is due (reminders, the digest) and deliver the due messages."""
    queue_scheduled(app, now)
    return deliver_due(get_engine(app), make_transport(app), renderer(app), now=now,
                       sender=app.config["MAIL_DEFAULT_SENDER"])


class BackgroundSender(threading.Thread):
    """Calls send_now every ``interval`` seconds until stop(); an error is logged
    and the next round tries again."""

    def __init__(self, app: Flask, interval: float):
        super().__init__(name="kyodo-mail-sender", daemon=True)
        self.app, self.interval = app, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                report = send_now(self.app)
                if report.sent or report.retrying or report.failed:
                    self.app.logger.info("mail: %s", report.summary())
            except Exception:  # noqa: BLE001 - the thread must outlive a bad round
                self.app.logger.exception("mail: the background sender's round failed")
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()


def start_background_sender(app: Flask, interval: float = 30) -> BackgroundSender:
    """Start the daemon thread ``kyodo serve`` runs beside the app (gunicorn
    does not: run ``kyodo mail send`` from cron there, see docs/mail.md)."""
    sender = BackgroundSender(app, interval)
    sender.start()
    return sender
