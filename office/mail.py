"""Delivering the outbox (``models.outbox``): claim a message, render it once,
send it, record the attempt. No Flask here: the app (``web.mail``) gives the
renderer and the transport; see docs/mail.md.

A message goes ``pending`` → ``sending`` (claimed) → ``sent``, or back to
``pending`` with a later ``next_attempt_at`` (backoff), or ``failed`` after
MAX_ATTEMPTS. Claiming is a compare-and-set (UPDATE … WHERE status='pending',
committed before anything is sent), so two senders (the server's thread and a
cron ``kyodo mail send``, or two hosts) never both send one message.

The one window where a message can go out twice: the SMTP server has accepted
it and the process dies (or loses the database) before the commit that marks it
sent. The row stays ``sending``; after SENDING_TIMEOUT the next sender puts it
back to ``pending`` (counting the attempt) and sends it again. It carries the
same Message-ID (made once and stored in the context), so mail clients and
servers that deduplicate on it show it once. Marking sent before sending would
instead lose the message in that crash; for a receipt or an opinion request a
duplicate is the smaller harm.

Why the standard library (``smtplib``, ``email.message.EmailMessage`` with
``email.policy.SMTP``) and not Flask-Mailman: no extra dependency, and the
sender needs per-message control (one claim, one attempt row, its own retry
time and a Message-ID kept across retries), which Flask-Mailman's send does not
give: it hands a batch to a backend that raises at the first failure without
saying which messages went out.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, case, update
from sqlmodel import Session, col, select

from models.clock import as_utc, to_jst, utcnow
from models.labels import MailStatus
from models.locks import rowcount_of
from models.outbox import counts_by_status, due_messages
from models.workflow_tables import MailAttempt, MailMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# Minutes before attempt n+1 after n failed ones: a short outage costs minutes,
# a long one about a day (1+5+15+60+180+360+720 min) before the message is failed.
BACKOFF_MINUTES = (1, 5, 15, 60, 180, 360, 720)
# A claim older than this is a sender that died between send and mark: longer
# than one SMTP exchange can take with the transport's timeout.
SENDING_TIMEOUT = timedelta(minutes=10)
SECRET_PLACEHOLDER = "（送信済みのため保存していません）"
DEFAULT_SENDER = "kyodo-match@localhost"
MESSAGE_ID_KEY = "_message_id"  # in MailMessage.context: made once, the same on every retry
MAIL_ID_HEADER = "X-Kyodo-Mail-Id"
INTERRUPTED = "interrupted while sending (the sender stopped before recording the result; it may have gone out)"

# (subject, body) of a message: web.mail.render_message, bound to the app.
Render = Callable[[MailMessage], tuple[str, str]]
SessionFactory = Callable[[], Session]


class Transport(Protocol):
    """Sends one message; returns the refused recipients (the others got it) or raises."""

    def send(self, message: EmailMessage) -> list[str]: ...

    def close(self) -> None: ...


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0  # failed this time, another attempt is due later
    failed: int = 0  # gave up this time (MAX_ATTEMPTS)
    skipped: int = 0  # claimed by another sender first
    recovered: int = 0  # found stuck in 'sending' and put back
    waiting: int = 0  # pending (or sending) in the outbox after this batch

    def summary(self) -> str:
        return f"sent {self.sent}, failed {self.failed}, waiting {self.waiting}"


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts.

    >>> backoff(1), backoff(3), backoff(99)
    (datetime.timedelta(seconds=60), datetime.timedelta(seconds=900), datetime.timedelta(seconds=43200))
    """
    return timedelta(minutes=BACKOFF_MINUTES[min(max(attempts, 1), len(BACKOFF_MINUTES)) - 1])


def session_factory(source: Engine | SessionFactory) -> SessionFactory:
    if isinstance(source, Engine):
        # Attributes stay loaded after a commit: no new transaction is opened while the SMTP
        # exchange runs.
        return lambda: Session(source, expire_on_commit=False)
    return source


def deliver_due(
    engine_or_session_factory: Engine | SessionFactory, transport: Transport, render: Render,
    now: datetime | None = None, limit: int = 50, *, sender: str = DEFAULT_SENDER,
) -> DeliveryReport:
    """Send the pending messages that are due (at most ``limit``), each in its own
    claim and commits; the transport is closed at the end."""
    factory = session_factory(engine_or_session_factory)
    now = as_utc(now) if now is not None else utcnow()
    report = DeliveryReport(recovered=recover_stuck(factory, now))
    with factory() as session:
        ids = [m.id for m in due_messages(session=session, now=now, limit=limit) if m.id is not None]
    try:
        for mail_id in ids:
            _deliver_one(factory, transport, render, mail_id, now, sender, report)
    finally:
        transport.close()
    with factory() as session:
        counts = counts_by_status(session=session)
    report.waiting = counts.get(MailStatus.PENDING.value, 0) + counts.get(MailStatus.SENDING.value, 0)
    return report


def recover_stuck(factory: SessionFactory, now: datetime) -> int:
    """Put messages claimed longer than SENDING_TIMEOUT ago back to pending
    (or failed), counting the interrupted attempt; the number put back."""
    with factory() as session:
        stuck = select(MailMessage.id).where(
            col(MailMessage.status) == MailStatus.SENDING.value, col(MailMessage.next_attempt_at) <= now
        )
        ids = [i for i in session.exec(stuck) if i is not None]
        recovered = 0
        for mail_id in ids:
            attempts = col(MailMessage.attempts) + 1
            result = session.execute(
                update(MailMessage)
                .where(col(MailMessage.id) == mail_id, col(MailMessage.status) == MailStatus.SENDING.value,
                       col(MailMessage.next_attempt_at) <= now)
                .values(attempts=attempts, last_error=INTERRUPTED, next_attempt_at=now,
                        status=case((attempts >= MAX_ATTEMPTS, MailStatus.FAILED.value),
                                    else_=MailStatus.PENDING.value))
            )
            if rowcount_of(result) == 1:
                session.add(MailAttempt(mail_id=mail_id, at=now, ok=False, error=INTERRUPTED))
                recovered += 1
        session.commit()
    if recovered:
        log.warning("mail: %d message(s) found stuck in sending, queued again", recovered)
    return recovered


def claim(session: Session, mail_id: int, now: datetime) -> bool:
    """Compare-and-set pending → sending, committed; False if another sender has it.

    While sending, next_attempt_at is when the claim counts as abandoned."""
    result = session.execute(
        update(MailMessage)
        .where(col(MailMessage.id) == mail_id, col(MailMessage.status) == MailStatus.PENDING.value,
               col(MailMessage.next_attempt_at) <= now)
        .values(status=MailStatus.SENDING.value, next_attempt_at=now + SENDING_TIMEOUT)
    )
    session.commit()
    return rowcount_of(result) == 1


def _deliver_one(factory: SessionFactory, transport: Transport, render: Render, mail_id: int,
                 now: datetime, sender: str, report: DeliveryReport) -> None:
    with factory() as session:
        if not claim(session, mail_id, now):
            report.skipped += 1
            return
        message = session.get(MailMessage, mail_id)
        assert message is not None
        try:
            email = prepare(session, message, render, sender, now)
            refused = transport.send(email)
        except Exception as exc:  # noqa: BLE001 - any error is this message's failed attempt
            _record_failure(session, message, now, exc, report)
            return
        _record_success(session, message, now, refused)
        report.sent += 1


def prepare(session: Session, message: MailMessage, render: Render, sender: str, now: datetime) -> EmailMessage:
    """Render once and store subject, body and Message-ID on the row (committed
    before sending, so a retry sends the very same text and Message-ID)."""
    if not message.subject and not message.body:
        message.subject, message.body = render(message)
    if not message.context.get(MESSAGE_ID_KEY):
        domain = sender.rpartition("@")[2].strip(" >") or "localhost"
        # A new dict: the JSON column notices assignment, not mutation. No idstring:
        # short enough for one header line; X-Kyodo-Mail-Id names the row.
        message.context = {**message.context, MESSAGE_ID_KEY: make_msgid(domain=domain)}
    session.add(message)
    session.commit()
    return build_email(message, sender, now)


def build_email(message: MailMessage, sender: str, now: datetime) -> EmailMessage:
    """The message as sent: RFC 2047 UTF-8 headers, a base64 UTF-8 text body
    (safe through relays without 8BITMIME)."""
    email = EmailMessage(policy=policy.SMTP)
    email["From"] = sender
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Date"] = format_datetime(to_jst(now))
    email["Message-ID"] = message.context[MESSAGE_ID_KEY]
    # Automatic mail (RFC 3834): vacation responders should not answer it.
    email["Auto-Submitted"] = "auto-generated"
    email[MAIL_ID_HEADER] = str(message.id)
    email.set_content(message.body, charset="utf-8", cte="base64")
    return email


def _record_success(session: Session, message: MailMessage, now: datetime, refused: list[str]) -> None:
    note = f"refused by the server: {', '.join(refused)}" if refused else ""
    message.status = MailStatus.SENT.value
    message.sent_at = now
    message.attempts += 1
    message.last_error = note
    if message.secret:
        # The NPO's private link lives on in their mailbox only.
        message.body = message.body.replace(message.secret, SECRET_PLACEHOLDER)
        message.subject = message.subject.replace(message.secret, SECRET_PLACEHOLDER)
    message.secret = None
    session.add(message)
    session.add(MailAttempt(mail_id=message.id or 0, at=now, ok=True, error=note))
    session.commit()
    log.info("mail %s (%s) sent to %s", message.id, message.kind, message.to_address)


def _record_failure(session: Session, message: MailMessage, now: datetime, exc: Exception,
                    report: DeliveryReport) -> None:
    session.rollback()  # whatever the render or the commit left half done; the claim stays
    error = f"{type(exc).__name__}: {exc}"[:2000]
    message.attempts += 1
    message.last_error = error
    if message.attempts >= MAX_ATTEMPTS:
        message.status = MailStatus.FAILED.value
        report.failed += 1
        log.error("mail %s (%s) failed for good after %d attempts: %s", message.id, message.kind,
                  message.attempts, error)
    else:
        message.status = MailStatus.PENDING.value
        message.next_attempt_at = now + backoff(message.attempts)
        report.retrying += 1
        log.warning("mail %s (%s) attempt %d failed, retry at %s: %s", message.id, message.kind,
                    message.attempts, message.next_attempt_at, error)
    session.add(message)
    session.add(MailAttempt(mail_id=message.id or 0, at=now, ok=False, error=error))
    session.commit()


# -- transports -----------------------------------------------------------------------


class SmtpTransport:
    """SMTP with one connection per batch (opened on the first message, closed by
    ``close``). If the server cannot be reached, the rest of the batch fails at
    once with the same error instead of waiting ``timeout`` for each message."""

    def __init__(self, host: str, port: int = 25, use_tls: bool = False, username: str = "",
                 password: str = "", timeout: float = 30.0):
        self.host, self.port, self.use_tls = host, port, use_tls
        self.username, self.password, self.timeout = username, password, timeout
        self._smtp: smtplib.SMTP | None = None
        self._unreachable: Exception | None = None

    def _connection(self) -> smtplib.SMTP:
        if self._unreachable is not None:
            raise self._unreachable
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                self._unreachable = exc
                raise
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.use_tls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> list[str]:
        smtp = self._connection()
        try:
            refused = smtp.send_message(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException):
            raise  # the server answered (and smtplib reset the dialogue): the connection is fine
        except Exception:
            self._drop()  # broken mid-dialogue: the next message opens a new one
            raise
        return sorted(refused)

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass  # gone already; every message of the batch is recorded
        self._drop()
        self._unreachable = None


class FileTransport:
    """Without MAIL_SERVER: each message becomes ``<id>.eml`` in ``folder``
    (instance/outbox/) and one log line, so a fresh machine needs nothing and
    the coordinator can open what would have gone out. The files hold the
    private links: a production server sets MAIL_SERVER."""

    def __init__(self, folder: str | Path, logger: logging.Logger | None = None):
        self.folder = Path(folder)
        self.logger = logger or log

    def send(self, message: EmailMessage) -> list[str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{message.get(MAIL_ID_HEADER) or make_msgid().strip('<>')}.eml"
        target = self.folder / name
        partial = target.with_suffix(".eml.part")
        # Owner only, written whole then renamed: a reader never sees half a file.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(message.as_bytes())
        partial.replace(target)
        self.logger.info("mail to %s written to %s (MAIL_SERVER is empty): %s",
                         message["To"], target, message["Subject"])
        return []

    def close(self) -> None:
        pass
