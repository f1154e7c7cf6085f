"""Flask-WTF forms, with the Japanese message shown beside each field.

The JSON API validates with the same ``ProposalForm`` (fed the JSON object as
form data), so the form and ``POST /api/v1/proposals`` accept exactly the same
proposals.
"""

from __future__ import annotations

import re
import unicodedata

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
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

from models.labels import CHOSEN_VERDICTS, LABELS, CollaborationType, ProposalStatus

# Stored code → label of the 希望する協働の形 choices (委託 / 補助 / 共催 / 後援 / その他).
COLLABORATION_TYPES = {c.value: LABELS[c] for c in CollaborationType}
# The buttons of the proposal page: 採用 (accept), 見送り (reject), 保留 (defer).
VERDICTS = {v.value: LABELS[v] for v in CHOSEN_VERDICTS}

# Bounds of each proposal field, in characters; also the API schema's maxLength.
MAX_LENGTHS = {
    "organization": 100,
    "representative": 50,
    "email": 254,
    "phone": 20,
    "title": 100,
    "body": 8000,
    "expected_effect": 4000,
}
MAX_BUDGET = 100_000_000  # 千円: one hundred billion yen is no NPO proposal
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _required(label: str) -> DataRequired:
    return DataRequired(message=f"{label}を入力してください。")


def _length(field: str, label: str) -> Length:
    n = MAX_LENGTHS[field]
    return Length(max=n, message=f"{label}は{n}文字以内で入力してください。")


def _no_control_characters(form: FlaskForm, field: StringField) -> None:
    if field.data and _CONTROL.search(field.data):
        raise ValidationError("使用できない制御文字が含まれています。")


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
    """The public proposal form (/proposals/new) and the API's create body."""

    organization = StringField(
        "団体名",
        filters=[_strip],
        validators=[_required("団体名"), _length("organization", "団体名"), _no_control_characters],
    )
    representative = StringField(
        "代表者名",
        filters=[_strip],
        validators=[
            _required("代表者名"),
            _length("representative", "代表者名"),
            _no_control_characters,
        ],
    )
    email = StringField(
        "メールアドレス",
        filters=[_strip],
        validators=[
            _required("メールアドレス"),
            _length("email", "メールアドレス"),
            Email(message="メールアドレスの形式が正しくありません。", check_deliverability=False),
        ],
    )
    phone = StringField(
        "電話番号（任意）",
        filters=[_strip],
        validators=[
            Optional(),
            _length("phone", "電話番号"),
            Regexp(
                r"^[0-9０-９+＋()（）\- －‐]+$",
                message="電話番号は数字とハイフンで入力してください。",
            ),
        ],
    )
    title = StringField(
        "提案タイトル",
        filters=[_strip],
        validators=[_required("提案タイトル"), _length("title", "提案タイトル"), _no_control_characters],
    )
    body = TextAreaField(
        "提案内容",
        filters=[_strip],
        validators=[_required("提案内容"), _length("body", "提案内容"), _no_control_characters],
    )
    expected_effect = TextAreaField(
        "期待される効果",
        filters=[_strip],
        validators=[
            _required("期待される効果"),
            _length("expected_effect", "期待される効果"),
            _no_control_characters,
        ],
    )
    collaboration_type = RadioField(
        "希望する協働の形",
        choices=[SelectChoice(code, label) for code, label in COLLABORATION_TYPES.items()],
        validate_choice=True,
        validators=[DataRequired(message="希望する協働の形を選んでください。")],
    )
    budget_thousand_yen = JapaneseIntegerField(
        "概算予算（千円）（任意）",
        validators=[
            Optional(),
            NumberRange(min=0, max=MAX_BUDGET, message=f"概算予算は0から{MAX_BUDGET:,}千円の整数で入力してください。"),
        ],
    )
    submit = SubmitField("提案を送信")

    class Meta:
        locales = ["ja_JP", "ja"]

    def proposal_data(self) -> dict[str, object]:
        """The validated values, keyed as in the API."""
        return {
            "organization": self.organization.data,
            "representative": self.representative.data,
            "email": self.email.data,
            "phone": self.phone.data or "",
            "title": self.title.data,
            "body": self.body.data,
            "expected_effect": self.expected_effect.data,
            "collaboration_type": self.collaboration_type.data,
            "budget_thousand_yen": self.budget_thousand_yen.data,
        }


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


class StatusForm(FlaskForm):
    """The status the submitter sees (受付 / 検討中 / マッチ成立 / 見送り)."""

    status = SelectField(
        "提案の状況",
        choices=[SelectChoice(s.value, LABELS[s]) for s in ProposalStatus],
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
