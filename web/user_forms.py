"""The forms of the first-run setup and of /users, with the Japanese message
beside each field. The rules (password, user name, e-mail) are those of
``office.accounts``, which its commands apply again: the forms ask it
instead of repeating them."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from corpus.text import has_control_characters
from office.accounts import (
    MAX_EMAIL_LENGTH,
    AccountError,
    check_email,
    check_password,
    check_username,
)


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _required(label: str) -> DataRequired:
    return DataRequired(message=f"{label}を入力してください。")


def _username(form: FlaskForm, field: StringField) -> None:
    try:
        check_username(field.data or "")
    except AccountError as exc:
        raise ValidationError(exc.ja) from None


def _email(form: FlaskForm, field: StringField) -> None:
    try:
        check_email(field.data or "")
    except AccountError as exc:
        raise ValidationError(exc.ja) from None


def _plain(form: FlaskForm, field: StringField) -> None:
    if field.data and has_control_characters(field.data):
        raise ValidationError("使用できない制御文字が含まれています。")


class PasswordForm(FlaskForm):
    """A new password typed twice (the reset of /users; the base of the others).
    ``username`` is whose password it is: the rule refuses the name itself."""

    username_for_rule = ""
    # Passwords are never stripped: a space typed is part of the password.
    password = PasswordField("パスワード", validators=[_required("パスワード")])
    confirm = PasswordField("パスワード（確認）", validators=[
        _required("確認のためのパスワード"), EqualTo("password", message="上のパスワードと一致しません。"),
    ])

    def _rule_username(self) -> str:
        field = getattr(self, "username", None)
        return (field.data or "") if field is not None else self.username_for_rule

    def validate_password(self, field: PasswordField) -> None:
        try:
            check_password(field.data or "", self._rule_username())
        except AccountError as exc:
            raise ValidationError(exc.ja) from None


class SetupForm(PasswordForm):
    """The first administrator: ユーザー名, 表示名 and the password twice."""

    username = StringField("ユーザー名", filters=[_strip], validators=[_required("ユーザー名"), _username])
    display_name = StringField("表示名（任意）", filters=[_strip], validators=[
        Length(max=100, message="表示名は100文字以内で入力してください。"), _plain,
    ])


class UserForm(SetupForm):
    """A new coordinator at /users: also メールアドレス and 管理者."""

    email = StringField("メールアドレス（任意）", filters=[_strip], validators=[
        Length(max=MAX_EMAIL_LENGTH, message=f"メールアドレスは{MAX_EMAIL_LENGTH}文字以内で入力してください。"),
        _email,
    ])
    is_admin = BooleanField("管理者にする")


class EmailForm(FlaskForm):
    """The address of the daily digest."""

    email = StringField("メールアドレス（任意）", filters=[_strip], validators=[
        Length(max=MAX_EMAIL_LENGTH, message=f"メールアドレスは{MAX_EMAIL_LENGTH}文字以内で入力してください。"),
        _email,
    ])


class ActionForm(FlaskForm):
    """The buttons of the list (無効にする, 有効にする, 管理者にする/外す): a POST with its CSRF token."""
