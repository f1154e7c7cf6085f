"""``kyodo users`` and ``kyodo tokens``: coordinators and API tokens.

The browser does the same at /users (docs/accounts.md); these stay for
scripts and for an office whose administrators are all locked out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlmodel import Session, select

from models.tables import ApiToken, User
from office.commands import Actor


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


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_group.command("create")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--display-name", default="", help="Name shown in the console and the audit trail.")
@click.option("--email", default="", help="Address of the daily digest (empty: none).")
@click.option("--admin", is_flag=True, help="Make the user an administrator (manages users at /users). "
              "The first user always is one.")
def users_create(name: str, password_stdin: bool, display_name: str, email: str, admin: bool) -> None:
    """Create the coordinator NAME (a password of at least 12 characters, not
    the name); asks for the password twice unless --password-stdin."""
    from office.accounts import AccountError, create_user

    password = _read_password(password_stdin)
    if not name.strip() or len(name) > 100:
        raise click.ClickException("NAME must have 1 to 100 characters")
    with _session() as session:
        try:
            user = create_user(session=session, username=name.strip(), password=password, display_name=display_name,
                               email=email.strip(), is_admin=admin, actor=Actor(name="cli"))
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
    role = ", administrator" if user.is_admin else ""
    click.echo(f"created user {user.username} (id {user.id}{role})")


def _user(session: Session, name: str) -> User:
    from office.accounts import user_by_name

    user = user_by_name(session=session, username=name)
    if user is None:
        raise click.ClickException(f"no user {name!r}")
    return user


@users_group.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable NAME: no more logins, and their sessions end now (never the last active administrator)."""
    from office.accounts import AccountError, disable_user

    with _session() as session:
        try:
            changed = disable_user(session=session, user=_user(session, name), actor=Actor(name="cli"))
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"disabled {name}" if changed else f"{name} was already disabled")


@users_group.command("enable")
@click.argument("name")
def users_enable(name: str) -> None:
    """Let NAME log in again."""
    from office.accounts import enable_user

    with _session() as session:
        changed = enable_user(session=session, user=_user(session, name), actor=Actor(name="cli"))
    click.echo(f"enabled {name}" if changed else f"{name} was already enabled")


@users_group.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input (for scripts).")
def users_password(name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (at least 12 characters, not the name); their sessions end."""
    from office.accounts import AccountError, check_password, set_password

    with _session() as session:
        user = _user(session, name)
        password = _read_password(password_stdin)
        try:
            check_password(password, user.username)
            set_password(session=session, user=user, password=password, actor=Actor(name="cli"))
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"new password set for {name}; their sessions have ended")


@users_group.command("list")
def users_list() -> None:
    """List the coordinators (id, name, display name, role, state)."""
    from office.accounts import list_users

    with _session() as session:
        for user in list_users(session=session):
            role = "admin" if user.is_admin else "coordinator"
            state = "" if user.is_active else " (inactive)"
            click.echo(f"{user.id}\t{user.username}\t{user.display_name}\t{role}{state}")


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
