"""The forms of the department pages (担当課), with the Japanese message beside
each field. The e-mail rule is that of ``DepartmentCreate``, which the
import applies too: the form asks the model instead of repeating it."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from pydantic import ValidationError as ModelError
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import Length, ValidationError

from corpus.text import has_control_characters
from models.departments import problem
from models.workflow_tables import DepartmentCreate


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _no_control_characters(form: FlaskForm, field: StringField) -> None:
    if field.data and has_control_characters(field.data):
        raise ValidationError("使用できない制御文字が含まれています。")


def _valid_emails(form: FlaskForm, field: StringField) -> None:
    """The addresses as DepartmentCreate takes them; on success the field holds
    their stored form ("a@x.jp, b@y.jp")."""
    try:
        field.data = DepartmentCreate(name="-", emails=field.data or "").emails
    except ModelError as exc:
        raise ValidationError(problem(exc.errors()[0])[1] + "。") from None


class DepartmentForm(FlaskForm):
    """One department's 部, メールアドレス, 所掌事務 and 有効 (its name is the programs')."""

    parent = StringField(
        "部（任意）", filters=[_strip],
        validators=[Length(max=100, message="部は100文字以内で入力してください。"), _no_control_characters],
    )
    emails = StringField(
        "メールアドレス（任意）", filters=[_strip],
        validators=[Length(max=1000, message="メールアドレスは1000文字以内で入力してください。"), _valid_emails],
    )
    duties = TextAreaField(
        "所掌事務（任意）", filters=[_strip],
        validators=[Length(max=4000, message="所掌事務は4000文字以内で入力してください。"), _no_control_characters],
    )
    active = BooleanField("有効")

    def department_data(self, name: str) -> DepartmentCreate:
        """The validated values as the command takes them."""
        return DepartmentCreate(
            name=name, parent=self.parent.data or "", emails=self.emails.data or "",
            duties=self.duties.data or "", active=bool(self.active.data),
        )


class DepartmentsImportForm(FlaskForm):
    """The departments from the office's spreadsheet."""

    file = FileField(
        "ファイル（CSV・Excel・JSONL）",
        validators=[
            FileRequired(message="ファイルを選んでください。"),
            FileAllowed(["csv", "txt", "tsv", "xlsx", "jsonl"], message="CSV・XLSX・JSONL のファイルを選んでください。"),
        ],
    )
