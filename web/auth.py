"""Coordinator login and logout (Flask-Login), and the password helpers.

A coordinator logs in with ``User.username``; ``kyodo users create NAME``
writes it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from sqlmodel import Session, select
from werkzeug.security import check_password_hash, generate_password_hash

from models.audit import record_event
from models.tables import ApiToken, User, utcnow
from models.tokens import hash_token
from web.db import get_session
from web.forms import LoginForm, LogoutForm

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "このページを見るにはログインしてください。"
login_manager.login_message_category = "error"

# Checked when the user name is unknown, so both failures take the same time.
_DUMMY_HASH = generate_password_hash("not a password")


@dataclass(frozen=True)
class Coordinator(UserMixin):
    """The logged-in user as Flask-Login sees it: plain values, no ORM row."""

    id: int
    username: str
    display_name: str

    def get_id(self) -> str:
        return str(self.id)


def _coordinator(user: User) -> Coordinator:
    assert user.id is not None
    return Coordinator(id=user.id, username=user.username, display_name=user.display_name or user.username)


@login_manager.user_loader
def _load_user(user_id: str) -> Coordinator | None:
    if not user_id.isdigit():
        return None
    user = get_session().get(User, int(user_id))
    return _coordinator(user) if user is not None and user.is_active else None


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
    """Store a coordinator with a hashed password and commit; ValueError if the name is taken."""
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, display_name=display_name or username, password_hash=hash_password(password))
    session.add(user)
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
    rows = list(session.exec(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))))  # type: ignore[union-attr]
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
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if row is None:
        return None
    user = session.get(User, row.user_id) if row.user_id is not None else None
    actor = f"token:{row.name}" + (f" ({user.username})" if user else "")
    return TokenOwner(actor=actor, user=user)


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    """ユーザー名 and パスワード; on success back to the page asked for."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        user = authenticate(session=get_session(), username=form.username.data, password=form.password.data)
        if user is not None:
            login_user(_coordinator(user))
            flash("ログインしました。", "info")
            return redirect(safe_next(form.next.data) or url_for("review.dashboard"))
        form.password.errors.append("ユーザー名またはパスワードが正しくありません。")
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():  # type: ignore[no-untyped-def]
    """End the session (a POST with a CSRF token)."""
    form = LogoutForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        logout_user()
        flash("ログアウトしました。", "info")
    return redirect(url_for("public.index"))


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.register_blueprint(bp)
