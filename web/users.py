"""The coordinators (支援室の職員), managed by an administrator in the browser:
the list with the add form, 無効にする / 有効にする, 管理者にする / 外す, a new
password typed by the admin, and the e-mail of the daily digest.

Anonymous visitors go to the login page; a coordinator who is not an
administrator gets a 403 page. Each change is one command of
``office.accounts``; one that would leave the office without an active
administrator is refused with its Japanese message.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from models.tables import User
from office.accounts import (
    PASSWORD_RULE,
    USERNAME_RULE,
    AccountError,
    create_user,
    disable_user,
    enable_user,
    list_users,
    set_admin,
    set_email,
    set_password,
)
from web import setup
from web.auth import current_actor, login_manager, stamp_session
from web.db import get_session
from web.user_forms import ActionForm, EmailForm, PasswordForm, UserForm

bp = Blueprint("users", __name__)
ADMINS_ONLY = "職員の管理は管理者だけが行えます。必要なときは管理者に依頼してください。"


@bp.before_request
def _require_admin() -> Any:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        return render_template("error.html", code=403, title="管理者専用のページです", message=ADMINS_ONLY), 403
    return None


_actor = current_actor


def _target(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None:
        abort(404)
    return user


def _is_me(user: User) -> bool:
    return user.id == int(current_user.id)


def _listing(form: UserForm | None = None, status: int = 200) -> Any:
    page = render_template("users.html", users=list_users(session=get_session()), form=form or UserForm(formdata=None),
                           password_rule=PASSWORD_RULE, username_rule=USERNAME_RULE)
    return page, status


@bp.route("/users")
def index():  # type: ignore[no-untyped-def]
    """Every coordinator: 役割, 状態, メールアドレス and the buttons; the add form below."""
    return _listing()


@bp.route("/users", methods=["POST"])
def add():  # type: ignore[no-untyped-def]
    """A new coordinator (an administrator if 管理者にする is checked)."""
    form = UserForm()
    if form.validate_on_submit():
        try:
            user = create_user(session=get_session(), username=form.username.data or "", password=form.password.data or "",
                               display_name=form.display_name.data or "", email=form.email.data or "",
                               is_admin=bool(form.is_admin.data), actor=_actor())
        except AccountError as exc:
            form.username.errors.append(exc.ja)
        else:
            flash(f"職員「{user.username}」を登録しました。", "info")
            return redirect(url_for("users.index"), 303)
    flash("登録できませんでした。入力欄の説明を確認してください。", "error")
    return _listing(form, 400)


def _refused(exc: AccountError) -> Any:
    flash(exc.ja, "error")
    return _listing(status=400)


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
def disable(user_id: int):  # type: ignore[no-untyped-def]
    """無効にする: no more logins, and every session of the user ends now."""
    user = _target(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        changed = disable_user(session=get_session(), user=user, actor=_actor())
    except AccountError as exc:
        return _refused(exc)
    flash(f"職員「{user.username}」を無効にしました。" if changed else "すでに無効です。", "info")
    return redirect(url_for("users.index"), 303)


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
def enable(user_id: int):  # type: ignore[no-untyped-def]
    """有効にする: the user may log in again (with the password they had)."""
    user = _target(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    changed = enable_user(session=get_session(), user=user, actor=_actor())
    flash(f"職員「{user.username}」を有効にしました。" if changed else "すでに有効です。", "info")
    return redirect(url_for("users.index"), 303)


@bp.route("/users/<int:user_id>/admin", methods=["POST"])
def admin(user_id: int):  # type: ignore[no-untyped-def]
    """管理者にする (is_admin=1) or 管理者から外す (is_admin=0)."""
    user = _target(user_id)
    if not ActionForm().validate_on_submit() or request.form.get("is_admin") not in ("0", "1"):
        abort(400)
    make_admin = request.form["is_admin"] == "1"
    try:
        set_admin(session=get_session(), user=user, is_admin=make_admin, actor=_actor())
    except AccountError as exc:
        return _refused(exc)
    flash(f"職員「{user.username}」を{'管理者にしました' if make_admin else '管理者から外しました'}。", "info")
    if _is_me(user) and not make_admin:
        return redirect(url_for("review.dashboard"), 303)  # this page is for admins only now
    return redirect(url_for("users.index"), 303)


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
def password(user_id: int):  # type: ignore[no-untyped-def]
    """A new password typed by the administrator; the user's sessions end."""
    user = _target(user_id)
    form = PasswordForm()
    form.username_for_rule = user.username
    if form.validate_on_submit():
        set_password(session=get_session(), user=user, password=form.password.data or "", actor=_actor())
        if _is_me(user):
            stamp_session(user)  # one's own new password keeps this browser logged in
        flash(f"職員「{user.username}」のパスワードを再設定しました。ログイン中だった画面はログアウトされます。", "info")
        return redirect(url_for("users.index"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("users_password.html", user=user, form=form, password_rule=PASSWORD_RULE), status


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
def edit(user_id: int):  # type: ignore[no-untyped-def]
    """The e-mail address of the daily digest (empty: no digest)."""
    user = _target(user_id)
    form = EmailForm(obj=user)
    if form.validate_on_submit():
        changed = set_email(session=get_session(), user=user, email=form.email.data or "", actor=_actor())
        flash(f"職員「{user.username}」のメールアドレスを保存しました。" if changed else "変更はありませんでした。", "info")
        return redirect(url_for("users.index"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("users_edit.html", user=user, form=form), status


def init_app(app: Flask) -> None:
    """Register the accounts' pages: /users, and the first-run setup page (web.setup)."""
    setup.init_app(app)
    app.register_blueprint(bp)
