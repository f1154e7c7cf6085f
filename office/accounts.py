"""Coordinators, their logins and API tokens: passwords and tokens kept as hashes only.

Each change is one command with its event and one commit. Two rules hold
across them: the office always keeps one active administrator (the first
coordinator is one, and no command takes away the last), and every change that
must end a coordinator's sessions (logout, disabling, a new password) bumps
``User.session_version``, which the web layer keeps in the session cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select
from werkzeug.security import check_password_hash, generate_password_hash

from corpus.text import has_control_characters
from models.audit import record_event
from models.clock import utcnow
from models.tables import ApiToken, User
from models.tokens import hash_token
from office.commands import NOBODY, Actor

# Checked when the user name is unknown, so both failures take the same time.
_DUMMY_HASH = generate_password_hash("not a password")

# The password rule, stated on every form before the password is typed: length
# is what makes a password hard to guess (NIST SP 800-63B), not a mix of kinds.
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
PASSWORD_RULE = (
    f"{MIN_PASSWORD_LENGTH}文字以上{MAX_PASSWORD_LENGTH}文字以内。文字の種類は自由です"
    "（覚えやすい長い文がおすすめです）。ユーザー名と同じものは使えません。"
)
MAX_USERNAME_LENGTH = 100
USERNAME_RULE = f"ログインに使う名前です。{MAX_USERNAME_LENGTH}文字以内、空白は使えません。"
MAX_EMAIL_LENGTH = 254


class AccountError(ValueError):
    """A change the office refuses: ``str()`` in English (one line for the
    command line), ``ja`` for the page."""

    def __init__(self, message: str, ja: str):
        super().__init__(message)
        self.ja = ja


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def check_password(password: str, username: str = "") -> None:
    """AccountError unless ``password`` follows the rule (PASSWORD_RULE): the
    one check of every way a password is set (setup, /users, the commands)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
                           f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters",
                           f"パスワードは{MAX_PASSWORD_LENGTH}文字以内にしてください。")
    if username and password.strip().casefold() == username.strip().casefold():
        raise AccountError("the password must not be the user name", "ユーザー名と同じパスワードは使えません。")


def check_username(username: str) -> None:
    """AccountError unless ``username`` is 1 to 100 characters without spaces or control characters."""
    if not username or len(username) > MAX_USERNAME_LENGTH:
        raise AccountError(f"the user name must have 1 to {MAX_USERNAME_LENGTH} characters",
                           f"ユーザー名は1文字以上{MAX_USERNAME_LENGTH}文字以内にしてください。")
    if any(c.isspace() for c in username) or has_control_characters(username):
        raise AccountError("the user name must not contain spaces or control characters",
                           "ユーザー名に空白や制御文字は使えません。")


def check_email(email: str) -> None:
    """AccountError unless ``email`` is empty or has the shape name@domain.tld."""
    local, _, domain = email.partition("@")
    if email and (not local or "." not in domain or any(c.isspace() for c in email)
                  or has_control_characters(email) or len(email) > MAX_EMAIL_LENGTH):
        raise AccountError(f"{email!r} is not an e-mail address", "メールアドレスの形式が正しくありません。")


def user_by_name(*, session: Session, username: str) -> User | None:
    """The user of that name; None for a name no user can have (control
    characters, which PostgreSQL cannot even compare)."""
    if has_control_characters(username):
        return None
    return session.exec(select(User).where(User.username == username)).first()


def list_users(*, session: Session) -> list[User]:
    """Every coordinator, in the order they were added."""
    return list(session.exec(select(User).order_by(col(User.id))))


def has_users(*, session: Session) -> bool:
    """Whether any coordinator exists (the first-run setup is for an office without one)."""
    return session.exec(select(func.count()).select_from(User)).one() > 0


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None (no event: see log_in)."""
    user = user_by_name(session=session, username=username)
    if user is None or not user.is_active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def create_user(
    *, session: Session, username: str, password: str, display_name: str = "", email: str = "",
    is_admin: bool = False, actor: Actor = NOBODY,
) -> User:
    """Store a coordinator with a hashed password and its event, commit;
    AccountError if the name is taken or the password breaks the rule.

    The first coordinator of an office is always an administrator, so an
    office set up from the command line can manage its users in the browser.
    """
    if user_by_name(session=session, username=username) is not None:
        raise AccountError(f"user {username!r} already exists", f"ユーザー名「{username}」はすでに使われています。")
    check_password(password, username)
    check_email(email)
    is_admin = is_admin or not has_users(session=session)
    user = User(username=username, display_name=display_name or username, email=email, is_admin=is_admin,
                password_hash=hash_password(password))
    session.add(user)
    session.flush()
    record_event(session=session, action="user.create", entity="user", entity_id=user.id or "",
                 actor=actor.name or username, user_id=actor.user_id or user.id,
                 detail={"username": username, "is_admin": is_admin})
    session.commit()
    session.refresh(user)
    return user


def _keep_an_admin(session: Session, user: User) -> None:
    """AccountError when ``user`` is the last active administrator (the row lock
    keeps two admins from removing each other at the same moment)."""
    if not (user.is_admin and user.is_active):
        return
    admins = session.exec(
        select(User.id).where(col(User.is_admin).is_(True), col(User.is_active).is_(True)).with_for_update()
    ).all()
    if len(admins) <= 1:
        raise AccountError(
            f"{user.username} is the last active administrator",
            f"{user.username}は最後の有効な管理者です。先に別の職員を管理者にしてください。",
        )


def _commit(session: Session, user: User, *, action: str, actor: Actor, detail: dict[str, object]) -> User:
    session.add(user)
    record_event(session=session, action=action, entity="user", entity_id=user.id or "", actor=actor.name,
                 user_id=actor.user_id, detail={"username": user.username, **detail})
    session.commit()
    session.refresh(user)
    return user


def disable_user(*, session: Session, user: User, actor: Actor = NOBODY) -> bool:
    """The user can no longer log in and their sessions end; False if already disabled."""
    if not user.is_active:
        return False
    _keep_an_admin(session, user)
    user.is_active = False
    user.session_version += 1
    _commit(session, user, action="user.disable", actor=actor, detail={})
    return True


def enable_user(*, session: Session, user: User, actor: Actor = NOBODY) -> bool:
    """The user can log in again (old sessions stay ended); False if already active."""
    if user.is_active:
        return False
    user.is_active = True
    _commit(session, user, action="user.enable", actor=actor, detail={})
    return True


def set_password(*, session: Session, user: User, password: str, actor: Actor = NOBODY) -> User:
    """A new password (checked against the rule); every session of the user ends."""
    check_password(password, user.username)
    user.password_hash = hash_password(password)
    user.session_version += 1
    return _commit(session, user, action="user.password", actor=actor, detail={})


def set_email(*, session: Session, user: User, email: str, actor: Actor = NOBODY) -> bool:
    """The address of the daily digest (empty: none); False when unchanged."""
    email = email.strip()
    check_email(email)
    if email == user.email:
        return False
    user.email = email
    _commit(session, user, action="user.update", actor=actor, detail={"email": email})
    return True


def set_admin(*, session: Session, user: User, is_admin: bool, actor: Actor = NOBODY) -> bool:
    """Give or take the administrator role; never from the last active admin. False when unchanged."""
    if user.is_admin == is_admin:
        return False
    if not is_admin:
        _keep_an_admin(session, user)
    user.is_admin = is_admin
    _commit(session, user, action="user.update", actor=actor, detail={"is_admin": is_admin})
    return True


def log_in(*, session: Session, username: str, password: str, address: str = "") -> User | None:
    """Check a login and record it (``auth.login`` or ``auth.login_failed``
    with the name tried, never the password); the user, or None."""
    user = authenticate(session=session, username=username, password=password)
    if user is None:
        record_event(session=session, action="auth.login_failed", entity="user", actor="",
                     detail={"username": _printable(username[:MAX_USERNAME_LENGTH]), "address": address})
    else:
        record_event(session=session, action="auth.login", entity="user", entity_id=user.id or "",
                     actor=user.username, user_id=user.id, detail={"address": address})
    session.commit()
    return user


def _printable(text: str) -> str:
    """The name tried, as the trail can store it (PostgreSQL refuses NUL): control characters as �."""
    return "".join("\ufffd" if has_control_characters(c) else c for c in text)


def log_out(*, session: Session, user_id: int, address: str = "") -> None:
    """End every session of the user (the cookie in hand and any copy of it)."""
    user = session.get(User, user_id)
    if user is None:
        return
    user.session_version += 1
    me = Actor(name=user.username, user_id=user.id)
    _commit(session, user, action="auth.logout", actor=me, detail={"address": address})


@dataclass(frozen=True)
class TokenOwner:
    """Who an API call acts as: the token's name, and its user if it has one."""

    actor: str
    user: User | None


def create_token(*, session: Session, name: str, user: User | None = None) -> tuple[ApiToken, str]:
    """A new API token; returns the row and the token itself (shown once, kept hashed)."""
    token = "kyodo_" + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=hash_token(token), user_id=user.id if user else None)
    session.add(row)
    session.flush()
    record_event(session=session, action="token.create", entity="api_token", entity_id=row.id or "",
                 actor=name, detail={"name": name})
    session.commit()
    session.refresh(row)
    return row, token


def revoke_tokens(*, session: Session, name: str) -> int:
    """Revoke every live token of this name; returns how many."""
    rows = list(session.exec(select(ApiToken).where(ApiToken.name == name, col(ApiToken.revoked_at).is_(None))))
    for row in rows:
        row.revoked_at = utcnow()
        session.add(row)
        record_event(session=session, action="token.revoke", entity="api_token", entity_id=row.id or "",
                     actor=name, detail={"name": name})
    session.commit()
    return len(rows)


def token_user(*, session: Session, token: str) -> TokenOwner | None:
    """The owner of a live token, or None when unknown or revoked."""
    if len(token) > 200:
        return None
    row = session.exec(
        select(ApiToken).where(col(ApiToken.token_hash) == hash_token(token), col(ApiToken.revoked_at).is_(None))
    ).first()
    if row is None:
        return None
    user = session.get(User, row.user_id) if row.user_id is not None else None
    actor = f"token:{row.name}" + (f" ({user.username})" if user else "")
    return TokenOwner(actor=actor, user=user)
