"""Coordinator login and logout (Flask-Login): revocable sessions, audited and throttled logins.

A coordinator logs in with ``User.username`` (the first one through
``/setup/<token>``, see web.setup; others at /users or ``kyodo users create``).

Sessions: the cookie holds the user id and ``_v``, the user's
``session_version`` at login. The loader refuses a cookie whose ``_v`` is not
the stored one, and logout, disabling the user and a new password bump it, so
a copy of the cookie stops working at once, everywhere.

Throttling: failed logins are counted per user name and per client address
with the ``limits`` library (storage: RATELIMIT_STORAGE_URI); once either
count reaches its limit (LOGIN_RATE_LIMIT, LOGIN_ADDRESS_RATE_LIMIT) further
attempts get HTTP 429, even with the right password, until the window moves on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from models.tables import User
from office.accounts import log_in, log_out
from office.commands import Actor
from web.db import get_session
from web.forms import LoginForm, LogoutForm

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "このページを見るにはログインしてください。"
login_manager.login_message_category = "error"
VERSION_KEY = "_v"  # the session's copy of User.session_version
LIMITER = "login_limiter"


@dataclass(frozen=True)
class Coordinator(UserMixin):
    """The logged-in user as Flask-Login sees it: plain values, no ORM row."""

    id: int
    username: str
    display_name: str
    is_admin: bool = False

    def get_id(self) -> str:
        return str(self.id)


def _coordinator(user: User) -> Coordinator:
    assert user.id is not None
    return Coordinator(id=user.id, username=user.username, display_name=user.display_name or user.username,
                       is_admin=user.is_admin)


@login_manager.user_loader
def _load_user(user_id: str) -> Coordinator | None:
    if not user_id.isdigit():
        return None
    user = get_session().get(User, int(user_id))
    if user is None or not user.is_active or session.get(VERSION_KEY) != user.session_version:
        return None  # unknown, disabled, or a session ended by logout or a new password
    return _coordinator(user)


def start_session(user: User) -> None:
    """Log ``user`` in on this browser, stamped with their current session version."""
    login_user(_coordinator(user))
    stamp_session(user)


def stamp_session(user: User) -> None:
    """Keep this browser's session after a change that ended the user's others (their own new password)."""
    session[VERSION_KEY] = user.session_version


def require_login() -> Any:
    """Every console blueprint's before_request: to /login unless logged in."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def current_actor() -> Actor:
    """The logged-in coordinator as the office commands' actor."""
    return Actor(name=current_user.username, user_id=int(current_user.id))


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@dataclass
class LoginLimiter:
    """Failed logins counted per user name and per client address (moving windows)."""

    limiter: MovingWindowRateLimiter
    per_user: RateLimitItem
    per_address: RateLimitItem

    def _counts(self, username: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        # casefold: "Coord" and "coord" are one count, whatever the database matches.
        return [(self.per_user, "login-user", username.casefold()), (self.per_address, "login-address", address)]

    def wait(self, username: str, address: str) -> int:
        """Seconds before another attempt is let through (0: now)."""
        waits = [
            math.ceil(self.limiter.get_window_stats(item, *keys).reset_time - time.time())
            for item, *keys in self._counts(username, address)
            if not self.limiter.test(item, *keys)
        ]
        return max([1, *waits]) if waits else 0

    def failed(self, username: str, address: str) -> None:
        for item, *keys in self._counts(username, address):
            self.limiter.hit(item, *keys)

    def succeeded(self, username: str) -> None:
        # The name's count starts again; the address's stays (one account of
        # one's own must not reset the count of guesses at others).
        self.limiter.clear(self.per_user, "login-user", username.casefold())


def _limit(app: Flask, name: str) -> RateLimitItem:
    try:
        return parse(app.config[name])
    except ValueError:
        raise ValueError(f"KYODO_{name}: expected N/[n ]second|minute|hour|day, got {app.config[name]!r}") from None


def _limiter() -> LoginLimiter:
    return current_app.extensions[LIMITER]


def _address() -> str:
    return request.remote_addr or "unknown"


def _throttled(form: LoginForm, seconds: int) -> Any:
    minutes = max(1, math.ceil(seconds / 60))
    flash(f"ログインの失敗が続いたため、このユーザー名またはこの端末からのログインを一時的に止めています。"
          f"約{minutes}分後にもう一度お試しください。", "error")
    response = make_response(render_template("login.html", form=form), 429)
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    """ユーザー名 and パスワード; on success back to the page asked for."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        username, limiter = form.username.data or "", _limiter()
        wait = limiter.wait(username, _address())
        if wait:
            return _throttled(form, wait)
        user = log_in(session=get_session(), username=username, password=form.password.data or "",
                      address=_address())
        if user is not None:
            limiter.succeeded(username)
            start_session(user)
            flash("ログインしました。", "info")
            return redirect(safe_next(form.next.data) or url_for("review.dashboard"))
        limiter.failed(username, _address())
        form.password.errors.append("ユーザー名またはパスワードが正しくありません。")
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():  # type: ignore[no-untyped-def]
    """End the session (a POST with a CSRF token), and every copy of its cookie."""
    form = LogoutForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        log_out(session=get_session(), user_id=int(current_user.id), address=_address())
        logout_user()
        session.pop(VERSION_KEY, None)
        flash("ログアウトしました。", "info")
    return redirect(url_for("public.index"))


def init_app(app: Flask) -> None:
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    app.extensions[LIMITER] = LoginLimiter(
        MovingWindowRateLimiter(storage), _limit(app, "LOGIN_RATE_LIMIT"), _limit(app, "LOGIN_ADDRESS_RATE_LIMIT")
    )
    login_manager.init_app(app)
    app.register_blueprint(bp)
