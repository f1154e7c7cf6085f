"""Forms of the collaboration workflow, with the Japanese message beside each
field. Their limits are those of the SQLModel families in
``models.workflow_tables``, which the office commands receive (and which the
API validates JSON with); ``to_model`` turns a valid form into that model."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from models.labels import LABELS, CollaborationType, Opinion, Stage
from models.workflow_tables import BUDGET_MAX, AnswerCreate, OpinionAnswer, ProjectCreate
from web.forms import _no_control_characters, _strip

_BUDGET = NumberRange(min=0, max=BUDGET_MAX, message=f"予算は0から{BUDGET_MAX:,}千円の整数で入力してください。")
_COLLABORATION = [SelectChoice(c.value, LABELS[c]) for c in CollaborationType]


def _max(label: str, n: int) -> Length:
    return Length(max=n, message=f"{label}は{n}文字以内で入力してください。")


class CheckboxList(SelectMultipleField):
    """Several choices as checkboxes (one per department)."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class OpinionRequestForm(FlaskForm):
    """所見照会: which departments, the message, the due date."""

    # Checked here, not by WTForms, so that an unknown name gets a Japanese message.
    departments = CheckboxList("照会する担当課", validate_choice=False)
    message = TextAreaField("依頼文", filters=[_strip], validators=[_max("依頼文", 4000), _no_control_characters],
                            id="request-message")
    due = DateField("回答期限", validators=[Optional()], format="%Y-%m-%d", id="request-due")

    def validate_departments(self, field: CheckboxList) -> None:
        if not field.data:
            raise ValidationError("照会する担当課を1つ以上選んでください。")
        known = {value for value, _label in field.choices or []}
        unknown = [name for name in field.data if name not in known]
        if unknown:
            raise ValidationError(f"担当課「{'、'.join(unknown)}」は登録されていないか、無効です。")

    def validate_due(self, field: DateField) -> None:
        from models.clock import JST, utcnow

        if field.data is not None and field.data < utcnow().astimezone(JST).date():
            raise ValidationError("回答期限には今日以降の日付を入力してください。")


class OpinionAnswerForm(FlaskForm):
    """The department's one short form: 所見, comment, form of collaboration, budget, timing."""

    opinion = RadioField(
        "所見", choices=[SelectChoice(o.value, LABELS[o]) for o in Opinion], validate_choice=True,
        validators=[DataRequired(message="所見を選んでください。")],
    )
    comment = TextAreaField("コメント（任意）", filters=[_strip],
                            validators=[_max("コメント", 4000), _no_control_characters])
    collaboration_type = SelectField(
        "考えられる協働の形（任意）", choices=[SelectChoice("", "—"), *_COLLABORATION], validate_choice=True,
    )
    budget_thousand_yen = IntegerField("概算予算（千円）（任意）", validators=[Optional(), _BUDGET])
    timing = StringField("時期（任意）", filters=[_strip], validators=[_max("時期", 200), _no_control_characters])
    answerer = StringField("回答者（任意）", filters=[_strip], validators=[_max("回答者", 100), _no_control_characters])

    def to_model(self) -> OpinionAnswer:
        data: dict[str, Any] = {k: self.data[k] for k in OpinionAnswer.model_fields}
        data["collaboration_type"] = data["collaboration_type"] or None
        return OpinionAnswer.model_validate(data)


class AnswerForm(FlaskForm):
    """The answer to the NPO: the stage it announces and its text."""

    # Ids of their own: the proposal page also holds the stage form (id "stage").
    stage = SelectField("お知らせする段階", choices=[SelectChoice(s.value, LABELS[s]) for s in Stage],
                        validate_choice=True, id="answer-stage")
    text = TextAreaField(
        "回答文（理由・次の手順・連絡先）", filters=[_strip], id="answer-text",
        validators=[DataRequired(message="回答文を入力してください。"), _max("回答文", 4000), _no_control_characters],
    )

    def to_model(self) -> AnswerCreate:
        return AnswerCreate.model_validate({"stage": self.stage.data, "text": self.text.data})


class PublishForm(FlaskForm):
    """Publish the drafts of the proposals ticked in the queue (only a CSRF token and the ids)."""


class WithdrawForm(FlaskForm):
    """The NPO withdraws its proposal (a confirmation box and a CSRF token)."""

    confirm = BooleanField("この提案を取り下げます",
                           validators=[DataRequired(message="取り下げる場合はチェックを入れてください。")])


class ProjectForm(FlaskForm):
    """The 協働事業 of an adopted proposal."""

    name = StringField("協働事業名", filters=[_strip],
                       validators=[DataRequired(message="協働事業名を入力してください。"), _max("協働事業名", 200),
                                   _no_control_characters])
    departments = StringField("担当課（複数は空白区切り）", filters=[_strip], id="project-departments",
                              validators=[_max("担当課", 500), _no_control_characters])
    collaboration_type = SelectField("協働の形", choices=_COLLABORATION, validate_choice=True,
                                     id="project-collaboration-type")
    agreement_date = DateField("協定締結日", validators=[Optional()], format="%Y-%m-%d")
    budget_thousand_yen = IntegerField("予算（千円）", validators=[Optional(), _BUDGET])
    period_start = DateField("実施期間（開始）", validators=[Optional()], format="%Y-%m-%d")
    period_end = DateField("実施期間（終了）", validators=[Optional()], format="%Y-%m-%d")

    def validate_period_end(self, field: DateField) -> None:
        if field.data and self.period_start.data and field.data < self.period_start.data:
            raise ValidationError("終了日は開始日以降にしてください。")

    def to_model(self) -> ProjectCreate:
        return ProjectCreate.model_validate({k: self.data[k] for k in ProjectCreate.model_fields})
