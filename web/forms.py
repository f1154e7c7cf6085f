"""Flask-WTF forms, with the Japanese message shown beside each field.

The JSON API validates with the same ``ProposalForm`` (fed the JSON object as
form data), so the form and ``POST /api/v1/proposals`` accept exactly the same
proposals. Its labels and limits are those of ``models.tables.PROPOSAL_LIMITS``,
which ``ProposalCreate`` enforces again when the proposal is stored.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from itsdangerous import BadData, URLSafeTimedSerializer
from wtforms import (
    BooleanField,
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
    AnyOf,
    DataRequired,
    Email,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import TextInput

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


def _nfkc(value: object) -> object:
    """Full-width letters, digits and signs as their half-width selves
    (ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ → hanako@example.jp), before validation, so
    what is checked, confirmed and stored is the same text."""
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


# Typed for the hyphen of a phone number (NFKC keeps them): the IME's ー, dashes, minus.
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−ー"), "-")


def _phone(value: object) -> object:
    return value.translate(_DASHES) if isinstance(value, str) else value


def _newlines(value: object) -> object:
    # A browser sends a textarea's line breaks as CRLF: counted as one
    # character each, as the form's counter (form.js) counts them.
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


# The budget as people write it, after NFKC: 1500, 1,500, 1,500千円, 500万, 1.5万円, 3,000,000円.
_AMOUNT = re.compile(r"(?P<number>\d{1,3}(?:,\d{3})+|\d+)(?P<fraction>\.\d+)?(?P<unit>千円?|万円?|円)?")
_THOUSANDS = {None: Decimal(1), "千": Decimal(1), "千円": Decimal(1), "万": Decimal(10), "万円": Decimal(10),
              "円": Decimal("0.001")}
BUDGET_FORMAT_MESSAGE = (
    "概算予算は千円単位の整数（半角数字）で入力してください。「1,500」や「500万円」のようにも書けます。"
)


def parse_thousand_yen(text: str) -> int:
    """千円 from what was typed: 「1,500」→1500, 「500万円」→5000, 「3,000,000円」→3000;
    ValueError when it is not a whole number of 千円 (「1,500円」, 「1.5」)."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    if re.fullmatch(r"-?\d+", text):  # a plain integer, negative too: the range check says why
        return int(text)
    match = _AMOUNT.fullmatch(text)
    if match is None or len(text) > 40:
        raise ValueError(BUDGET_FORMAT_MESSAGE)
    # Decimal, not float: 1.1万 is exactly 11 千円.
    thousands = Decimal(match["number"].replace(",", "") + (match["fraction"] or "")) * _THOUSANDS[match["unit"]]
    if thousands != thousands.to_integral_value():  # 1.5 (千円), 1,500円: not a whole number of 千円
        raise ValueError(BUDGET_FORMAT_MESSAGE)
    return int(thousands)


class BudgetField(IntegerField):
    """概算予算 in 千円, read from 千円, 万円 or 円 (``parse_thousand_yen``); what
    was typed stays in ``raw_data`` for the confirmation page to say how it was read.
    A text input: a browser's number input refuses 「500万」 and 「1,500」."""

    widget = TextInput()

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        self.data = None  # stays None when the text is refused (its ValueError is the field's message)
        self.data = parse_thousand_yen(valuelist[0])


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
        filters=[_nfkc, _strip],
        validators=[
            *_rules("email"),
            _no_control_characters,
            Email(message="メールアドレスの形式が正しくありません。", check_deliverability=False),
        ],
    )
    phone = StringField(
        _label("phone"),
        filters=[_nfkc, _phone, _strip],
        validators=[
            *_rules("phone"),
            Regexp(r"^[0-9+() -]+$", message="電話番号は数字とハイフンで入力してください。"),
        ],
    )
    title = StringField(_label("title"), filters=[_strip], validators=[*_rules("title"), _no_control_characters])
    body = TextAreaField(
        _label("body"), filters=[_newlines, _strip], validators=[*_rules("body"), _no_control_characters]
    )
    expected_effect = TextAreaField(
        _label("expected_effect"), filters=[_newlines, _strip],
        validators=[*_rules("expected_effect"), _no_control_characters],
    )
    collaboration_type = RadioField(
        _label("collaboration_type"),
        choices=[SelectChoice(code, label) for code, label in COLLABORATION_TYPES.items()],
        # AnyOf rather than validate_choice: its message is WTForms' English 「Not a valid choice.」
        validate_choice=False,
        validators=[
            DataRequired(message=f"{PROPOSAL_LIMITS['collaboration_type'].label}を選んでください。"),
            AnyOf(list(COLLABORATION_TYPES), message=f"{PROPOSAL_LIMITS['collaboration_type'].label}は選択肢から選んでください。"),
        ],
    )
    budget_thousand_yen = BudgetField(_label("budget_thousand_yen"), validators=_rules("budget_thousand_yen"))
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
        """Each proposal field and its value as the confirmation page shows it
        (the normalised value: what will be stored)."""
        shown = []
        for f in self.proposal_fields():
            unit = PROPOSAL_LIMITS[f.name].unit
            if f.data is None or f.data == "":
                text = "（なし）"
            elif isinstance(f, RadioField):
                text = next((str(option.label.text) for option in f if option.checked), str(f.data))
            elif isinstance(f.data, int):
                text = f"{f.data:,} {unit}".strip()
            else:
                text = f"{f.data} {unit}" if unit else str(f.data)
            shown.append((f, text))
        return shown

    def readings(self) -> dict[str, str]:
        """How the form read what was typed, where it changed it: the
        confirmation page says so beside the value (nothing changed silently)."""
        notes: dict[str, str] = {}
        for f in self.proposal_fields():
            typed = str(f.raw_data[0]).strip() if f.raw_data else ""
            if isinstance(f, BudgetField) and f.data is not None:
                yen = f"（{f.data * 1000:,}円）" if f.data else ""
                source = "" if typed in (str(f.data), f"{f.data:,}") else f"「{typed}」を"
                notes[f.name] = f"{source}{f.data:,}千円{yen}として受け付けます。"
            elif f.name in ("email", "phone") and typed and typed != f.data:
                notes[f.name] = f"「{typed}」を半角に直して受け付けます。"
        return notes

    def error_summary(self) -> list[tuple[str, str]]:
        """(the id to link to, the message) of each field in error, in the
        page's order, one message each: the first problem is the one to fix."""
        summary = []
        for f in self:
            if not f.errors:
                continue
            target = f"{f.id}-0" if isinstance(f, RadioField) else f.id
            message, rule = str(f.errors[0]), PROPOSAL_LIMITS.get(f.name)
            if rule and not message.startswith(rule.label):  # 「使用できない制御文字…」: which field?
                message = f"{rule.label}：{message}"
            summary.append((target, message))
        return summary


class PublicProposalForm(ProposalForm):
    """The form at /proposals/new: the proposal and the consent to the
    個人情報の取扱い notice. The API validates with ProposalForm, without it:
    a system submits there, and its operator answers for the consent."""

    consent = BooleanField(
        "上記の「個人情報の取扱い」に同意します",
        validators=[DataRequired(message="送信するには、個人情報の取扱いに同意してください。")],
    )


# The confirmation page's one-time token: a random nonce, signed so only this
# app issues it, valid for a day (a confirmation page left open overnight is
# still sent; an older one is confirmed again).
CONFIRMATION_SALT = "proposal-confirmation"
CONFIRMATION_MAX_AGE = 24 * 3600


def confirmation_token(secret_key: str) -> str:
    return URLSafeTimedSerializer(secret_key, salt=CONFIRMATION_SALT).dumps(secrets.token_urlsafe(16))


def confirmation_nonce(secret_key: str, token: str) -> str | None:
    """The nonce of a token this app signed within the day, else None."""
    try:
        nonce = URLSafeTimedSerializer(secret_key, salt=CONFIRMATION_SALT).loads(token, max_age=CONFIRMATION_MAX_AGE)
    except BadData:
        return None
    return nonce if isinstance(nonce, str) else None


class StatusRecoverForm(FlaskForm):
    """A new status link: the receipt number and the e-mail address given on the form."""

    receipt_number = StringField(
        "受付番号",
        filters=[_nfkc, _strip],
        validators=[_required("受付番号"), Length(max=20, message="受付番号は20文字以内で入力してください。")],
    )
    email = StringField(
        "メールアドレス",
        filters=[_nfkc, _strip],
        validators=[
            _required("メールアドレス"),
            Length(max=254, message="メールアドレスは254文字以内で入力してください。"),
        ],
    )


class LoginForm(FlaskForm):
    """The coordinator's login."""

    username = StringField(
        "ユーザー名",
        filters=[_strip],
        validators=[_required("ユーザー名"), Length(max=100, message="ユーザー名が長すぎます。"),
                    _no_control_characters],
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
    year: int | None = None  # the 年度 read from fiscal_year once validated
    fiscal_year = StringField(
        "年度（任意：2026、令和8、R8）",
        filters=[_strip],
        validators=[Length(max=20, message="年度は 2026・令和8・R8 のように入力してください。")],
    )

    def validate_fiscal_year(self, field: StringField) -> None:
        """Read as corpus.programs.parse_fiscal_year does; the year itself is ``year``."""
        from corpus.programs import parse_fiscal_year

        self.year = None
        if field.data:
            try:
                self.year = parse_fiscal_year(field.data)
            except ValueError as exc:
                raise ValidationError(str(exc) + "。") from None
