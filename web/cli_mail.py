"""``kyodo mail``: the outbox from the command line (docs/mail.md). ``kyodo mail
send`` is also what cron runs where gunicorn serves the app (no sender thread)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from models.labels import MailStatus
from models.workflow_tables import MailMessage


@contextmanager
def _app() -> Iterator[Any]:
    """The app on its database (migrated on first use), closed when the command ends."""
    from web import create_app
    from web.db import dispose

    app = create_app()
    try:
        yield app
    except SQLAlchemyError as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        raise click.ClickException(f"database: {first}") from exc
    finally:
        dispose(app)


@click.group("mail")
def mail_group() -> None:
    """E-mail: deliver the outbox now, list it, queue the daily digest.

    Without KYODO_MAIL_SERVER each message is written to instance/outbox/<id>.eml.
    """


@mail_group.command("send")
def mail_send() -> None:
    """Queue the due reminders (and the digest after 08:00), then deliver every due message.

    Prints "sent N, failed N, waiting N"; a message that failed is retried later.
    """
    from web.mail import send_now

    with _app() as app:
        report = send_now(app)
    click.echo(report.summary())


@mail_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in MailStatus]), default=None,
              help="Only messages in this state (failed: the ones given up on).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def mail_list(status: str | None, limit: int) -> None:
    """List the newest messages: id, kind, to, status, attempts, last error."""
    from web.db import get_engine

    with _app() as app, Session(get_engine(app)) as session:
        query = select(MailMessage)
        if status is not None:
            query = query.where(col(MailMessage.status) == status)
        for message in session.exec(query.order_by(col(MailMessage.id).desc()).limit(limit)):
            error = message.last_error.splitlines()[0] if message.last_error else ""
            click.echo(f"{message.id}\t{message.kind}\t{message.to_address}\t{message.status}\t"
                       f"{message.attempts}\t{error}")


@mail_group.command("digest")
def mail_digest() -> None:
    """Queue today's digest to the coordinators now (not waiting for 08:00); once a day."""
    from models.clock import to_jst, utcnow
    from office.digest import queue_digest
    from web.db import get_engine

    with _app() as app, Session(get_engine(app), expire_on_commit=False) as session:
        message = queue_digest(session=session, today=to_jst(utcnow()).date())
        if message is None:
            click.echo("no digest queued (already queued today, no coordinator with an e-mail, or nothing to say)")
        else:
            click.echo(f"digest queued (mail {message.id} to {message.to_address}); kyodo mail send delivers it")
