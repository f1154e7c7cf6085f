"""One proposal schema: PROPOSAL_LIMITS and the ProposalBase / Proposal /
ProposalCreate / ProposalPublic family are what the form, its confirmation
page, the API (keys, output, OpenAPI components) and the paper import read."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from sqlmodel import select
from webdata import PROPOSAL, PROPOSAL_FIELDS

from models.proposals import COMPARED_FIELDS, IMPORT_KEYS
from models.tables import PROPOSAL_LIMITS, Proposal, ProposalBase, ProposalCreate, ProposalPublic
from web.api import PROPOSAL_KEYS, proposal_json
from web.forms import ProposalForm
from web.openapi import SCHEMAS

API_PROPOSAL = {**PROPOSAL_FIELDS, "budget_thousand_yen": 300}
LIMITED = [(key, rule.max_length) for key, rule in PROPOSAL_LIMITS.items() if rule.max_length]


def test_every_copy_of_the_field_list_is_derived_from_the_one_table(app):
    keys = tuple(PROPOSAL_LIMITS)
    assert keys == tuple(ProposalBase.model_fields) == IMPORT_KEYS == COMPARED_FIELDS == PROPOSAL_KEYS
    assert set(ProposalCreate.model_fields) == {*keys, "external_ref"}
    with app.test_request_context():
        form = ProposalForm(meta={"csrf": False})
        assert tuple(f.name for f in form.proposal_fields()) == keys
        assert form.title.label.text == PROPOSAL_LIMITS["title"].label
        assert form.budget_thousand_yen.label.text == "概算予算（千円）（任意）"


@pytest.mark.parametrize("key,limit", LIMITED)
def test_proposal_create_enforces_each_length_limit(key, limit):
    base = {"title": "防災講座", "body": "地域の防災講座を開きたい"}
    assert len(getattr(ProposalCreate(**{**base, key: "あ" * limit}), key)) == limit
    with pytest.raises(ValidationError) as raised:
        ProposalCreate(**{**base, key: "あ" * (limit + 1)})
    [error] = raised.value.errors()
    assert error["loc"] == (key,) and error["type"] == "string_too_long"


def test_proposal_create_enforces_the_budget_range_and_control_characters():
    rule = PROPOSAL_LIMITS["budget_thousand_yen"]
    base = {"title": "防災講座", "body": "地域の防災講座を開きたい"}
    assert ProposalCreate(**base, budget_thousand_yen=rule.maximum).budget_thousand_yen == rule.maximum
    for bad in (rule.maximum + 1, -1):
        with pytest.raises(ValidationError):
            ProposalCreate(**base, budget_thousand_yen=bad)
    with pytest.raises(ValidationError) as raised:
        ProposalCreate(**{**base, "title": "防災\x85講座"})
    assert raised.value.errors()[0]["loc"] == ("title",)
    assert ProposalCreate(**{**base, "body": "一行目\n\t二行目"}).body == "一行目\n\t二行目"


def test_columns_are_at_least_as_wide_as_the_limits():
    # The columns were not narrowed (no migration): storage width >= the limit.
    for key, limit in LIMITED:
        length = Proposal.__table__.c[key].type.length  # type: ignore[attr-defined]
        assert length is None or length >= limit, key


def test_x85_in_a_title_is_refused_by_the_form_and_the_api(client, session):
    page = client.post("/proposals/new", data={**PROPOSAL, "title": "公園\x85清掃"})
    assert page.status_code == 400
    assert 'id="title-error">使用できない制御文字が含まれています。' in page.data.decode()
    response = client.post("/api/v1/proposals", json={**API_PROPOSAL, "title": "公園\x85清掃"})
    assert response.status_code == 400
    assert response.json["fields"] == {"title": ["使用できない制御文字が含まれています。"]}
    assert session.exec(select(Proposal)).first() is None


def test_api_names_each_bad_field_and_each_unknown_key(client):
    too_long = {**API_PROPOSAL, "title": "あ" * 101, "budget_thousand_yen": 10**9}
    fields = client.post("/api/v1/proposals", json=too_long).json["fields"]
    assert fields["title"] == ["提案タイトルは100文字以内で入力してください。"]
    assert fields["budget_thousand_yen"] == ["概算予算は0から100,000,000千円の整数で入力してください。"]
    unknown = client.post("/api/v1/proposals", json={**API_PROPOSAL, "external_ref": "x", "id": 1})
    assert unknown.status_code == 400 and "external_ref, id" in unknown.json["message"]


def test_api_output_is_proposal_public(client, auth_headers, submit, session):
    done = submit(phone="")
    shown = client.get(f"/api/v1/proposals/{done.id}", headers=auth_headers).json
    expected = set(ProposalPublic.model_json_schema(mode="serialization")["properties"])
    # GET /proposals/{id} adds the answer to the NPO (ProposalDetail in the OpenAPI document).
    assert shown.pop("answer") == {"draft": None, "published": None}
    assert set(shown) == expected and "status_token_hash" not in shown and "external_ref" not in shown
    assert shown["phone"] is None and shown["stage_label"] == "受付" and shown["stage"] == "received"
    assert shown["created_at"].endswith("Z") and shown["updated_at"].endswith("Z")
    assert shown["budget_thousand_yen"] == 300 and shown["collaboration_type"] == "co_hosting"


def test_a_row_longer_than_todays_limits_is_still_shown(client, auth_headers, session):
    # Rows stored before the limits may be longer: what is shown is not bounded.
    old = Proposal(title="長" * 300, body="本文", organization="団" * 150, status_token_hash="h" * 64)
    session.add(old)
    session.commit()
    shown = client.get(f"/api/v1/proposals/{old.id}", headers=auth_headers)
    assert shown.status_code == 200 and shown.json["title"] == "長" * 300
    assert proposal_json(old)["organization"] == "団" * 150


def test_confirmation_page_lists_every_field_of_the_table(client):
    html = client.post("/proposals/new", data={**PROPOSAL, "phone": "", "action": "confirm"}).data.decode()
    for key, rule in PROPOSAL_LIMITS.items():
        assert rule.label in html, key
        assert f'name="{key}"' in html, key
    assert "共催" in html and "300 千円" in html and "（なし）" in html  # the phone left empty


def test_openapi_proposal_components_are_the_models_schemas():
    create, shown = SCHEMAS["ProposalCreate"], SCHEMAS["Proposal"]
    for key, limit in LIMITED:
        assert create["properties"][key]["maxLength"] == limit, key
    budget = create["properties"]["budget_thousand_yen"]
    rule = PROPOSAL_LIMITS["budget_thousand_yen"]
    assert (budget["minimum"], budget["maximum"], budget["nullable"]) == (rule.minimum, rule.maximum, True)
    assert set(create["properties"]) == set(PROPOSAL_KEYS) and create["additionalProperties"] is False
    assert set(create["required"]) == {k for k, r in PROPOSAL_LIMITS.items() if not r.optional}
    public = ProposalPublic.model_json_schema(mode="serialization")
    assert set(shown["properties"]) == set(public["properties"]) and "maxLength" not in json.dumps(shown)
    assert shown["properties"]["stage"] == {"$ref": "#/components/schemas/Stage"}
    text = json.dumps({"create": create, "shown": shown})
    assert '"type": "null"' not in text and "$defs" not in text  # OpenAPI 3.0: nullable, components
