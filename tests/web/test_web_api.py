"""/api/v1: public create, bearer tokens, suggestions, decisions, programs,
runs, errors as JSON, and the OpenAPI document against the URL map."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select
from webdata import PROPOSAL, PROPOSAL_FIELDS

from models.tables import Decision, Proposal
from web.cli import cli
from web.openapi import openapi_document

API_PROPOSAL = {**PROPOSAL_FIELDS, "collaboration_type": "共催", "budget_thousand_yen": 300}


def test_create_is_public_and_answers_201(client, session):
    response = client.post("/api/v1/proposals", json=API_PROPOSAL)
    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == {"id", "receipt_number", "stage", "status_url"}
    assert response.headers["Location"] == f"/api/v1/proposals/{body['id']}"
    proposal = session.get(Proposal, body["id"])
    assert proposal.collaboration_type == "co_hosting" and proposal.receipt_number == body["receipt_number"]
    status_path = re.sub(r"^https?://[^/]+", "", body["status_url"])
    assert "受付" in client.get(status_path).data.decode()


@pytest.mark.parametrize(
    "payload,field",
    [
        ({**API_PROPOSAL, "email": "nope"}, "email"),
        ({**API_PROPOSAL, "title": 5}, "title"),
        ({**API_PROPOSAL, "budget_thousand_yen": "300"}, "budget_thousand_yen"),
        ({**API_PROPOSAL, "collaboration_type": "賄賂"}, "collaboration_type"),
        ({k: v for k, v in API_PROPOSAL.items() if k != "body"}, "body"),
    ],
)
def test_create_validates_like_the_form(client, session, payload, field):
    response = client.post("/api/v1/proposals", json=payload)
    assert response.status_code == 400
    assert field in response.json["fields"] and response.json["message"]
    assert session.exec(select(Proposal)).first() is None


@pytest.mark.parametrize("raw", ["[1, 2]", "not json", ""])
def test_create_needs_a_json_object(client, raw):
    response = client.post("/api/v1/proposals", data=raw, content_type="application/json")
    assert response.status_code == 400 and response.json["error"] == "bad_request"


def test_create_rejects_unknown_keys(client):
    response = client.post("/api/v1/proposals", json={**API_PROPOSAL, "status": "matched"})
    assert response.status_code == 400 and "status" in response.json["message"]


def test_too_large_is_413_json(client):
    response = client.post("/api/v1/proposals", data=b"{" + b" " * 1_100_000 + b"}", content_type="application/json")
    assert response.status_code == 413 and response.json["error"] == "request_entity_too_large"


def test_token_protected_routes(client, auth_headers, submitted, session):
    assert client.get("/api/v1/proposals").status_code == 401
    assert client.get("/api/v1/proposals", headers={"Authorization": "Bearer wrong"}).status_code == 401
    listing = client.get("/api/v1/proposals", headers=auth_headers).json
    assert listing["total"] == 1 and listing["items"][0]["title"] == PROPOSAL["title"]
    one = client.get(f"/api/v1/proposals/{submitted.id}", headers=auth_headers).json
    assert one["receipt_number"] == submitted.receipt_number and one["stage_label"] == "受付"
    suggestions = client.get(f"/api/v1/proposals/{submitted.id}/suggestions", headers=auth_headers).json
    first = suggestions["items"][0]
    assert first["rank"] == 1 and first["terms"] and first["decision"] is None and first["is_new"] is True
    created = client.post(
        f"/api/v1/proposals/{submitted.id}/decisions", headers=auth_headers,
        json={"program_id": first["program_id"], "verdict": "accepted", "note": "API"},
    )
    assert created.status_code == 201 and created.json["decided_by"] == "token:test-token"
    history = client.get(f"/api/v1/proposals/{submitted.id}/decisions", headers=auth_headers).json
    assert [d["verdict"] for d in history["items"]] == ["accepted"]
    again = client.get(f"/api/v1/proposals/{submitted.id}/suggestions", headers=auth_headers).json
    assert again["items"][0]["decision"] == "accepted"
    assert session.get(Proposal, submitted.id).stage == "checking"


@pytest.mark.parametrize(
    "payload,code",
    [
        ({"program_id": 1, "verdict": "maybe"}, 400),
        ({"program_id": "1", "verdict": "accepted"}, 400),
        ({"program_id": 1, "verdict": "accepted", "note": 3}, 400),
        ({"program_id": 1, "verdict": "accepted", "extra": 1}, 400),
        ({"program_id": 999999, "verdict": "accepted"}, 404),
    ],
)
def test_bad_decisions(client, auth_headers, submitted, session, payload, code):
    response = client.post(f"/api/v1/proposals/{submitted.id}/decisions", headers=auth_headers, json=payload)
    assert response.status_code == code and response.json["message"]
    assert session.exec(select(Decision)).first() is None


def test_not_found_and_bad_queries(client, auth_headers):
    for path in ("/api/v1/proposals/424242", "/api/v1/proposals/424242/suggestions",
                 "/api/v1/programs/424242", "/api/v1/proposals/99999999999999", "/api/v1/nothing"):
        response = client.get(path, headers=auth_headers)
        assert response.status_code == 404 and response.is_json, path
    for query in ("per_page=0", "per_page=101", "page=x", "stage=lost"):
        assert client.get(f"/api/v1/proposals?{query}", headers=auth_headers).status_code == 400, query


def test_programs_and_runs(client, auth_headers):
    programs = client.get("/api/v1/programs?q=保険&per_page=5", headers=auth_headers).json
    assert programs["total"] >= 1 and all("保険" in str(p) for p in programs["items"])
    one = client.get(f"/api/v1/programs/{programs['items'][0]['id']}", headers=auth_headers).json
    assert one["fiscal_year"] == 2008 and one["keywords"] == ""
    assert client.get("/api/v1/runs", headers=auth_headers).json == {"items": []}


def test_tokens_create_and_revoke_from_the_command_line(runner, client):
    created = runner.invoke(cli, ["tokens", "create", "excel-macro"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert re.fullmatch(r"kyodo_[A-Za-z0-9_-]{40,}", token)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/runs", headers=headers).status_code == 200
    revoked = runner.invoke(cli, ["tokens", "revoke", "excel-macro"])
    assert revoked.exit_code == 0 and "revoked 1" in revoked.output
    assert client.get("/api/v1/runs", headers=headers).status_code == 401
    assert runner.invoke(cli, ["tokens", "revoke", "excel-macro"]).exit_code == 1
    listed = runner.invoke(cli, ["tokens", "list"])
    assert "excel-macro" in listed.output and token not in listed.output


def test_token_of_a_deactivated_user_is_403(runner, client, session):
    runner.invoke(cli, ["users", "create", "gone", "--password-stdin"], input="password-123\n")
    token = runner.invoke(cli, ["tokens", "create", "t", "--user", "gone"]).output.strip().splitlines()[-1]
    from models.tables import User

    user = session.exec(select(User).where(User.username == "gone")).one()
    user.is_active = False
    session.add(user)
    session.commit()
    assert client.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def _openapi_paths(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return routes


def test_openapi_document_matches_the_routes(app, client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    document = served.json
    assert document == openapi_document()
    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == _openapi_paths(app)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            public = (path, method) in {("/api/v1/proposals", "post"), ("/api/v1/openapi.json", "get"),
                                        ("/api/v1/opinions/{token}", "post")}
            assert (operation["security"] == []) is public, (path, method)
            names = set(re.findall(r"{(\w+)}", path))
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == declared, (path, method)
