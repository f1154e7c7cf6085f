"""``kyodo users`` and ``kyodo tokens``: coordinators and API tokens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlmodel import Session, select

from models.tables import ApiToken, User


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the app's database (migrated and seeded on first use)."""
    from web import create_app
    from web.db import dispose, get_engine

    app = create_app()
    try:
        with Session(get_engine(app), expire_on_commit=False) as session:
            yield session
    finally:
        dispose(app)


@click.group("users")
def users_group() -> None:
    """Coordinators of the support office (支援室) who log in to the console."""


@users_group.command("create")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--display-name", default="", help="Name shown in the console and the audit trail.")
def users_create(name: str, password_stdin: bool, display_name: str) -> None:
    """Create the coordinator NAME; asks for the password twice unless --password-stdin."""
    from office.accounts import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password must have at least 8 characters")
    if not name.strip() or len(name) > 100:
        raise click.ClickException("NAME must have 1 to 100 characters")
    with _session() as session:
        try:
            user = create_user(session=session, username=name.strip(), password=password, display_name=display_name)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"created user {user.username} (id {user.id})")


@users_group.command("list")
def users_list() -> None:
    """List the coordinators."""
    with _session() as session:
        for user in session.exec(select(User).order_by(User.id)):  # type: ignore[arg-type]
            state = "" if user.is_active else " (inactive)"
            click.echo(f"{user.id}\t{user.username}\t{user.display_name}{state}")


@click.group("tokens")
def tokens_group() -> None:
    """API tokens for Authorization: Bearer TOKEN on /api/v1."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--user", "username", default=None, help="Coordinator the token acts for (audit trail).")
def tokens_create(name: str, username: str | None) -> None:
    """Create a token named NAME; the token alone is printed on the last line (shown once)."""
    from office.accounts import create_token

    if not name.strip() or len(name) > 200:
        raise click.ClickException("NAME must have 1 to 200 characters")
    with _session() as session:
        user = None
        if username is not None:
            user = session.exec(select(User).where(User.username == username)).first()
            if user is None:
                raise click.ClickException(f"no user {username!r}")
        row, token = create_token(session=session, name=name.strip(), user=user)
    click.echo(f"created token {row.name} (id {row.id}); it is shown only once:")
    click.echo(token)


@tokens_group.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke every live token named NAME."""
    from office.accounts import revoke_tokens

    with _session() as session:
        count = revoke_tokens(session=session, name=name)
    if not count:
        raise click.ClickException(f"no live token named {name!r}")
    click.echo(f"revoked {count} token(s) named {name}")


@tokens_group.command("list")
def tokens_list() -> None:
    """List tokens (never the token itself)."""
    with _session() as session:
        for row in session.exec(select(ApiToken).order_by(ApiToken.id)):  # type: ignore[arg-type]
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "live"
            click.echo(f"{row.id}\t{row.name}\t{state}")
