"""Flask-WTF forms, with the Japanese message shown beside each field.

The JSON API validates with the same ``ProposalForm`` (fed the JSON object as
form data), so the form and ``POST /api/v1/proposals`` accept exactly the same
proposals. Its labels and limits are those of ``models.tables.PROPOSAL_LIMITS``,
which ``ProposalCreate`` enforces again when the proposal is stored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    Field,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from corpus.text import has_control_characters
from models.labels import CHOSEN_VERDICTS, LABELS, CollaborationType, Stage
from models.tables import PROPOSAL_LIMITS

# Stored code → label of the 希望する協働の形 choices (委託 / 補助 / 共催 / 後援 / その他).
COLLABORATION_TYPES = {c.value: LABELS[c] for c in CollaborationType}
# The buttons of the proposal page: 採用 (accept), 見送り (reject), 保留 (defer).
VERDICTS = {v.value: LABELS[v] for v in CHOSEN_VERDICTS}


def _required(label: str) -> DataRequired:
    return DataRequired(message=f"{label}を入力してください。")


def _no_control_characters(form: FlaskForm, field: StringField) -> None:
    if field.data and has_control_characters(field.data):
        raise ValidationError("使用できない制御文字が含まれています。")


def _label(name: str) -> str:
    """The form's label of a proposal field: 概算予算（千円）（任意）."""
    rule = PROPOSAL_LIMITS[name]
    unit = f"（{rule.unit}）" if rule.unit else ""
    return rule.label + unit + ("（任意）" if rule.optional else "")


def _rules(name: str) -> list[Callable[..., Any]]:
    """Required (or optional) and within its limits, as PROPOSAL_LIMITS says."""
    rule = PROPOSAL_LIMITS[name]
    validators: list[Callable[..., Any]] = [Optional() if rule.optional else _required(rule.label)]
    if rule.max_length is not None:
        n = rule.max_length
        validators.append(Length(max=n, message=f"{rule.label}は{n}文字以内で入力してください。"))
    if rule.maximum is not None:
        low, high = rule.minimum or 0, rule.maximum
        message = f"{rule.label}は{low}から{high:,}{rule.unit}の整数で入力してください。"
        validators.append(NumberRange(min=low, max=high, message=message))
    return validators


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class JapaneseIntegerField(IntegerField):
    """An integer field whose parse error is in Japanese; full-width digits and commas accepted."""

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        text = unicodedata.normalize("NFKC", valuelist[0]).replace(",", "").strip()
        try:
            self.data = int(text)
        except ValueError:
            self.data = None
            raise ValueError("整数（半角数字）で入力してください。") from None


class ProposalForm(FlaskForm):
    """The public proposal form (/proposals/new) and the API's create body:
    one field per key of PROPOSAL_LIMITS, in its order."""

    organization = StringField(
        _label("organization"), filters=[_strip], validators=[*_rules("organization"), _no_control_characters]
    )
    representative = StringField(
        _label("representative"), filters=[_strip], validators=[*_rules("representative"), _no_control_characters]
    )
    email = StringField(
        _label("email"),
        filters=[_strip],
        validators=[
            *_rules("email"),
            _no_control_characters,
            Email(message="メールアドレスの形式が正しくありません。", check_deliverability=False),
        ],
    )
    phone = StringField(
        _label("phone"),
        filters=[_strip],
        validators=[
            *_rules("phone"),
            Regexp(r"^[0-9０-９+＋()（）\- －‐]+$", message="電話番号は数字とハイフンで入力してください。"),
        ],
    )
    title = StringField(_label("title"), filters=[_strip], validators=[*_rules("title"), _no_control_characters])
    body = TextAreaField(_label("body"), filters=[_strip], validators=[*_rules("body"), _no_control_characters])
    expected_effect = TextAreaField(
        _label("expected_effect"), filters=[_strip], validators=[*_rules("expected_effect"), _no_control_characters]
    )
    collaboration_type = RadioField(
        _label("collaboration_type"),
        choices=[SelectChoice(code, label) for code, label in COLLABORATION_TYPES.items()],
        validate_choice=True,
        validators=[DataRequired(message=f"{PROPOSAL_LIMITS['collaboration_type'].label}を選んでください。")],
    )
    budget_thousand_yen = JapaneseIntegerField(_label("budget_thousand_yen"), validators=_rules("budget_thousand_yen"))
    submit = SubmitField("提案を送信")

    class Meta:
        locales = ["ja_JP", "ja"]

    def proposal_fields(self) -> Iterator[Field]:
        """The fields of the proposal, in the order of PROPOSAL_LIMITS."""
        return (self[name] for name in PROPOSAL_LIMITS)

    def proposal_data(self) -> dict[str, object]:
        """The validated values, keyed as in the API (an empty text is "")."""
        return {
            f.name: "" if f.data is None and isinstance(f, StringField) else f.data for f in self.proposal_fields()
        }

    def confirmation(self) -> list[tuple[Field, str]]:
        """Each proposal field and its value as the confirmation page shows it."""
        shown = []
        for f in self.proposal_fields():
            unit = PROPOSAL_LIMITS[f.name].unit
            if f.data is None or f.data == "":
                text = "（なし）"
            elif isinstance(f, RadioField):
                text = next((str(option.label.text) for option in f if option.checked), str(f.data))
            else:
                text = f"{f.data} {unit}" if unit else str(f.data)
            shown.append((f, text))
        return shown


class LoginForm(FlaskForm):
    """The coordinator's login."""

    username = StringField(
        "ユーザー名",
        filters=[_strip],
        validators=[_required("ユーザー名"), Length(max=100, message="ユーザー名が長すぎます。")],
    )
    password = PasswordField(
        "パスワード",
        validators=[_required("パスワード"), Length(max=200, message="パスワードが長すぎます。")],
    )
    next = HiddenField()
    submit = SubmitField("ログイン")


class DecisionForm(FlaskForm):
    """採用 / 見送り / 保留 of one suggested (or hand-picked) program, with a note."""

    program_id = HiddenField(validators=[DataRequired(message="事業を選んでください。")])
    verdict = HiddenField(validators=[DataRequired(message="判断を選んでください。")])
    note = TextAreaField(
        "メモ（任意）",
        filters=[_strip],
        validators=[Length(max=2000, message="メモは2000文字以内で入力してください。"), _no_control_characters],
    )

    def validate_verdict(self, field: HiddenField) -> None:
        if field.data not in VERDICTS:
            raise ValidationError("判断が正しくありません。")


class PairForm(FlaskForm):
    """Pair a proposal by hand with any program of the catalogue."""

    program_id = StringField(
        "事業ID",
        filters=[_strip],
        validators=[_required("事業ID"), Length(max=100, message="事業IDが長すぎます。")],
    )
    note = TextAreaField(
        "メモ（任意）",
        filters=[_strip],
        validators=[Length(max=2000, message="メモは2000文字以内で入力してください。"), _no_control_characters],
    )


class UndoForm(FlaskForm):
    """Undo of the proposal's last decision (only a CSRF token)."""


class LogoutForm(FlaskForm):
    """Logout is a POST, so a link on another site cannot log anyone out."""


class StageForm(FlaskForm):
    """The office's stage of the proposal (受付 … 完了); the NPO sees published answers only."""

    stage = SelectField(
        "段階",
        choices=[SelectChoice(s.value, LABELS[s]) for s in Stage],
        validate_choice=True,
    )


class KeywordsForm(FlaskForm):
    """The coordinator's everyday words for a program (キーワード, 言い換え)."""

    keywords = TextAreaField(
        "キーワード（言い換え）",
        filters=[_strip],
        validators=[
            Length(max=2000, message="キーワードは2000文字以内で入力してください。"),
            _no_control_characters,
        ],
    )


class ProgramsImportForm(FlaskForm):
    """The city's program list, or the coordinator's keywords, from a spreadsheet."""

    kind = RadioField(
        "ファイルの種類",
        choices=[
            SelectChoice("catalogue", "事業一覧（施策名・目的・事業名・取り組み内容・担当課…）"),
            SelectChoice("keywords", "キーワードだけ（列：id、キーワード）"),
        ],
        default="catalogue",
        validate_choice=True,
        validators=[DataRequired(message="ファイルの種類を選んでください。")],
    )
    file = FileField(
        "ファイル（CSV・Excel・JSONL）",
        validators=[
            FileRequired(message="ファイルを選んでください。"),
            FileAllowed(["csv", "txt", "tsv", "xlsx", "jsonl"], message="CSV・XLSX・JSONL のファイルを選んでください。"),
        ],
    )
    fiscal_year = IntegerField(
        "年度（西暦、任意）",
        validators=[Optional(), NumberRange(min=1900, max=2200, message="年度は西暦（例：2026）で入力してください。")],
    )
