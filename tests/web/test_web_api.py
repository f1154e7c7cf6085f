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


# -- themes and the kinds of suggestion terms --------------------------------------------


@pytest.fixture
def themed(app, session):
    """The eight proposals of tests/test_theme_edits.py, grouped by the real rematch."""
    from test_theme_edits import add_theme_proposals, run, theme_at

    proposals = add_theme_proposals(session)
    run(app)
    return proposals, theme_at(session, proposals[0]), theme_at(session, proposals[3])


def _call_and_validate(app, headers, path: str, **case):
    """One request through schemathesis, checked against the app's own OpenAPI document."""
    import schemathesis

    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path]["GET"]
    return operation.Case(headers=headers, **case).call_and_validate()


def test_the_api_lists_themes_most_groups_first_and_pages_them(client, auth_headers, themed):
    proposals, kids, safety = themed
    body = client.get("/api/v1/themes", headers=auth_headers).json
    assert body["total"] == 5 and body["pages"] == 1 and body["page"] == 1  # 子ども食堂, 防災 and three of one
    first = body["items"][0]
    assert first == {"id": kids.id, "label": "子ども・食堂・ネットワーク", "label_by_coordinator": False,
                     "proposal_ids": [p.id for p in proposals[:3]], "organisation_count": 3}
    assert body["items"][1]["id"] == safety.id and body["items"][1]["organisation_count"] == 2
    assert sorted(pid for item in body["items"] for pid in item["proposal_ids"]) == sorted(p.id for p in proposals)
    second = client.get("/api/v1/themes?page=2&per_page=2", headers=auth_headers).json
    assert [item["id"] for item in second["items"]] == [item["id"] for item in body["items"][2:4]]
    assert second["pages"] == 3 and second["total"] == 5


def test_one_theme_shows_its_proposals_programs_and_departments(app, client, auth_headers, themed):
    proposals, _, safety = themed
    body = client.get(f"/api/v1/themes/{safety.id}", headers=auth_headers).json
    assert body["id"] == safety.id and body["organisations"] == ["東町自治会", "西町防災会"]
    assert [p["id"] for p in body["proposals"]] == [proposals[3].id, proposals[4].id]
    assert body["proposals"][0]["receipt_number"] == proposals[3].receipt_number
    assert body["proposals"][0]["stage_label"] == "受付" and body["proposals"][0]["pinned"] is False
    assert body["terms"] and body["programs"] and body["departments"]
    assert all(p["department"] for p in body["programs"])
    response = _call_and_validate(app, auth_headers, "/api/v1/themes/{theme_id}", path_parameters={"theme_id": safety.id})
    assert response.status_code == 200
    assert _call_and_validate(app, auth_headers, "/api/v1/themes").status_code == 200


def test_themes_answer_400_naming_the_field_404_and_401(client, auth_headers, themed):
    for query, field in (("page=0", "page"), ("per_page=101", "per_page"), ("page=x", "page"), ("per_page=", "per_page")):
        response = client.get(f"/api/v1/themes?{query}", headers=auth_headers)
        assert response.status_code == 400 and response.is_json, query
        assert list(response.json["fields"]) == [field] and field in response.json["message"]
    for path in ("/api/v1/themes/999999", "/api/v1/themes/99999999999"):
        response = client.get(path, headers=auth_headers)
        assert response.status_code == 404 and response.is_json
    assert client.get("/api/v1/themes").status_code == 401
    assert client.get(f"/api/v1/themes/{themed[1].id}").status_code == 401


def test_suggestion_terms_carry_their_kind_old_rows_included(app, client, auth_headers, session):
    from models.tables import MatchRun, Suggestion

    proposal_id = client.post("/api/v1/proposals", json=API_PROPOSAL).json["id"]
    run = MatchRun(status="succeeded", mode="lexical")
    session.add(run)
    session.flush()
    session.add_all([
        # As office.rows.terms stores them now: the kind when it is not "word", the lemma when it differs.
        Suggestion(proposal_id=proposal_id, program_id=1, match_run_id=run.id, score=0.5, rank=1, terms=[
            ["公園", 0.2, "name"], ["清掃", 0.1, "keywords", "keyword"], ["市民活動", 0.05, "purpose", "compound"],
            ["子ども", 0.04, "activities", "word", "子供"], ["災", 0.01, "purpose", "kanji", "字:災"]]),
        # Stored before kinds existed: [term, weight, field], the term a lemma.
        Suggestion(proposal_id=proposal_id, program_id=2, match_run_id=run.id, score=0.4, rank=2, terms=[
            ["字:防", 0.1, "name"], ["美化", 0.1, "keywords"], ["為", 0.01, "purpose"], ["環境", 0.2, "activities"],
            ["bad"]]),
    ])
    session.commit()
    items = client.get(f"/api/v1/proposals/{proposal_id}/suggestions", headers=auth_headers).json["items"]
    assert [(t["term"], t["field"], t["kind"]) for t in items[0]["terms"]] == [
        ("公園", "name", "word"), ("清掃", "keywords", "keyword"), ("市民活動", "purpose", "compound"),
        ("子ども", "activities", "word"), ("災", "purpose", "kanji")]
    assert [(t["term"], t["kind"]) for t in items[1]["terms"]] == [  # the malformed row is skipped
        ("防", "kanji"), ("美化", "keyword"), ("為", "function"), ("環境", "word")]
    response = _call_and_validate(app, auth_headers, "/api/v1/proposals/{proposal_id}/suggestions",
                                  path_parameters={"proposal_id": proposal_id})
    assert response.status_code == 200
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]["SuggestionTerm"]
    assert schema["properties"]["kind"]["enum"] == ["word", "keyword", "compound", "kanji", "function"]
    assert "kind" in schema["required"]
