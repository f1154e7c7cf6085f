"""Coordinator login and logout (Flask-Login), and the password helpers.

A coordinator logs in with ``User.username``; ``kyodo users create NAME``
writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from models.tables import User
from office.accounts import authenticate
from web.db import get_session
from web.forms import LoginForm, LogoutForm

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "このページを見るにはログインしてください。"
login_manager.login_message_category = "error"

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
