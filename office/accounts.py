"""Coordinators and API tokens: passwords and tokens kept as hashes only.
Each change is one command with its event."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlmodel import Session, col, select
from werkzeug.security import check_password_hash, generate_password_hash

from models.audit import record_event
from models.clock import utcnow
from models.tables import ApiToken, User
from models.tokens import hash_token

# Checked when the user name is unknown, so both failures take the same time.
_DUMMY_HASH = generate_password_hash("not a password")


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.is_active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def create_user(*, session: Session, username: str, password: str, display_name: str = "") -> User:
    """Store a coordinator with a hashed password and its event, commit; ValueError if the name is taken."""
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, display_name=display_name or username, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    record_event(session=session, action="user.create", entity="user", entity_id=user.id or "",
                 actor=username, user_id=user.id, detail={"username": username})
    session.commit()
    session.refresh(user)
    return user


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
