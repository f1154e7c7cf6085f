"""The first start: a one-time address that registers the first administrator.

While the office has no coordinator, ``setup_message(app)`` (printed by
``kyodo serve``) makes a random token and returns the line with its address,
``/setup/<token>``. The page asks for ユーザー名, 表示名 and a password, creates
the first coordinator as an administrator, logs them in and goes to the
dashboard. Afterwards the address answers that setup is done; any other token
is a 404.

The token is kept as its hash (``models.tokens.hash_token``) in the instance
folder's ``setup_token`` file (mode 0600), not in the database: it is the
installation's secret, beside ``secret_key``, only the server's account reads
it, and it needs no table of its own for a row used once in the office's life.
Only the hash is kept, so the address cannot be shown again: each call (each
start of ``kyodo serve`` while there is still no coordinator) makes a new one
and the previous address stops working. The file is claimed by an atomic
rename, so two browsers sending the form at once make one administrator.
After use it keeps the hash marked ``used``: that address says "done", others 404.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlmodel import Session

from models.tables import User
from models.tokens import hash_token
from office.accounts import PASSWORD_RULE, USERNAME_RULE, AccountError, create_user, has_users
from web.auth import start_session
from web.db import get_engine, get_session
from web.user_forms import SetupForm

bp = Blueprint("setup", __name__)
TOKEN_FILE = "setup_token"
USED = "used "  # the file's prefix once the address has made the first administrator
DEFAULT_URL = "http://127.0.0.1:5000"  # kyodo serve's own address
MAX_TOKEN_LENGTH = 100


def _token_file(app: Flask) -> Path:
    return Path(app.instance_path) / TOKEN_FILE


def _write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once, readable by the server's account only."""
    partial = path.with_name(f"{path.name}.{secrets.token_hex(6)}.new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        f.write(text + "\n")
    os.replace(partial, path)


def setup_message(app: Flask, *, base_url: str | None = None) -> str | None:
    """The line telling where to register the first administrator, or None when a coordinator exists.

    Makes a new token each call (the previous address stops working). The
    address starts with ``base_url``, else PUBLIC_URL, else http://127.0.0.1:5000.
    """
    with Session(get_engine(app)) as session:
        if has_users(session=session):
            return None
    token = secrets.token_urlsafe(32)
    _write(_token_file(app), hash_token(token))
    base = (base_url or app.config.get("PUBLIC_URL") or DEFAULT_URL).rstrip("/")
    return f"初回設定: {base}/setup/{token} を開いて最初の管理者を登録してください (first-run setup)"


def _state(token: str) -> str | None:
    """"pending" or "used" when ``token`` is the stored one, else None."""
    try:
        text = _token_file(current_app).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    stored = text.removeprefix(USED)
    if len(token) > MAX_TOKEN_LENGTH or not hmac.compare_digest(stored, hash_token(token)):
        return None
    return "used" if text.startswith(USED) else "pending"


def _no_store(response: Any) -> Any:
    # The address is a secret: no cache keeps the page, no Referer carries it away.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _done() -> Any:
    page = render_template("setup_done.html")
    return _no_store(current_app.make_response((page, 410)))


def _create_admin(form: SetupForm, token: str) -> User | None:
    """The first administrator, or None when another request took the address first."""
    path = _token_file(current_app)
    claim = path.with_name(f"{path.name}.{secrets.token_hex(6)}.claim")
    try:
        os.rename(path, claim)  # atomic: of two requests at once, one wins
    except FileNotFoundError:
        return None
    try:
        user = create_user(session=get_session(), username=form.username.data or "", password=form.password.data or "",
                           display_name=form.display_name.data or "", is_admin=True)
    except BaseException:
        os.rename(claim, path)  # the address stays usable
        raise
    _write(path, USED + hash_token(token))
    claim.unlink()
    return user


@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token: str):  # type: ignore[no-untyped-def]
    """The first administrator's form; afterwards a page saying setup is done."""
    state = _state(token)
    if state is None:
        abort(404)
    if state == "used" or has_users(session=get_session()):
        return _done()
    form = SetupForm()
    if form.validate_on_submit():
        try:
            user = _create_admin(form, token)
        except AccountError as exc:
            form.username.errors.append(exc.ja)
        else:
            if user is None:
                return _done()
            start_session(user)
            flash(f"管理者「{user.username}」を登録し、ログインしました。メニューの「職員管理」から、ほかの職員を追加できます。", "info")
            return redirect(url_for("review.dashboard"))
    status = 400 if request.method == "POST" else 200
    page = render_template("setup.html", form=form, token=token, password_rule=PASSWORD_RULE,
                           username_rule=USERNAME_RULE)
    return _no_store(current_app.make_response((page, status)))


def init_app(app: Flask) -> None:
    """Register the setup page."""
    app.register_blueprint(bp)
