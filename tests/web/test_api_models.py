"""One schema per entity for what the API shows: each object of /api/v1 is its
model's dump (ProgramPublic, DecisionPublic, MatchRunPublic, SuggestionItem),
in the JSON formats the API has always given, and the OpenAPI components are
those models' serialization schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

from sqlmodel import col, select

from models.labels import CHOSEN_VERDICTS
from models.tables import (
    Decision,
    DecisionPublic,
    MatchRun,
    MatchRunPublic,
    Program,
    ProgramPublic,
    Suggestion,
    SuggestionItem,
)
from web.api import decision_json, program_json, run_json, suggestion_json
from web.openapi import REF_TEMPLATE, SCHEMAS, SHOWN, openapi30

JST = timezone(timedelta(hours=9))


def _keys(component: str) -> set[str]:
    return set(SCHEMAS[component]["properties"])


def _add_runs(session) -> tuple[MatchRun, MatchRun]:
    done = MatchRun(status="succeeded", started_at=datetime(2026, 4, 1, 9, 0, 0, 123456, tzinfo=JST),
                    finished_at=datetime(2026, 4, 1, 0, 5, tzinfo=UTC), duration_seconds=300.25,
                    n_proposals=1, n_programs=30, n_suggestions=2, n_new=1, fingerprint="f" * 64, mode="semantic")
    failed = MatchRun(status="failed", started_at=datetime(2026, 4, 2, tzinfo=UTC), error="boom")
    session.add_all([done, failed])
    session.commit()
    return done, failed


def _add_semantic_suggestions(session, proposal_id: int, run: MatchRun) -> None:
    """Batch rows of the published run, with the semantic fields the online rows lack."""
    session.add_all([
        Suggestion(proposal_id=proposal_id, program_id=1, match_run_id=run.id, score=1.234567891, rank=1,
                   terms=[["公園", 0.123456789, "name"]], is_new=True, lexical_score=0.55555555,
                   semantic_score=0.912345678, carried_by="exemplar", exemplar_proposal_id=proposal_id,
                   exemplar_score=0.876543219),
        Suggestion(proposal_id=proposal_id, program_id=2, match_run_id=run.id, score=0.5, rank=2,
                   terms=[], lexical_score=0.1, semantic_score=0.8, carried_by="semantic"),
    ])
    session.commit()


def test_each_api_object_is_its_public_models_dump(client, auth_headers, submitted, session):
    programs = client.get("/api/v1/programs?per_page=5", headers=auth_headers).json["items"]
    rows = {p.id: p for p in session.exec(select(Program))}
    assert programs and all(p == ProgramPublic.model_validate(rows[p["id"]]).model_dump(mode="json") for p in programs)
    assert all(set(p) == _keys("Program") for p in programs) and "source" not in programs[0]

    decided = client.post(f"/api/v1/proposals/{submitted.id}/decisions", headers=auth_headers,
                          json={"program_id": 1, "verdict": "accepted"}).json
    history = client.get(f"/api/v1/proposals/{submitted.id}/decisions", headers=auth_headers).json["items"]
    stored = session.exec(select(Decision)).one()
    assert decided == history[0] == DecisionPublic.model_validate(stored).model_dump(mode="json")
    assert set(decided) == _keys("Decision") and decided["decided_at"].endswith("Z")

    done, failed = _add_runs(session)
    shown = client.get("/api/v1/runs", headers=auth_headers).json["items"]
    assert shown == [MatchRunPublic.model_validate(r).model_dump(mode="json") for r in (failed, done)]
    assert all(set(r) == _keys("Run") for r in shown) and "fingerprint" not in shown[0]

    _add_semantic_suggestions(session, submitted.id, done)
    items = client.get(f"/api/v1/proposals/{submitted.id}/suggestions", headers=auth_headers).json["items"]
    found = session.exec(select(Suggestion).where(col(Suggestion.match_run_id) == done.id).order_by(col(Suggestion.rank))).all()
    expected = [
        SuggestionItem.model_validate(s, update={
            "program_name": rows[s.program_id].name, "department": rows[s.program_id].department,
            "decision": "accepted" if s.program_id == 1 else None,
        }).model_dump(mode="json")
        for s in found
    ]
    assert items == expected and len(items) == 2
    assert all(set(item) == _keys("Suggestion") for item in items)
    assert items[0]["exemplar"] == {"proposal_id": submitted.id, "score": 0.8765} and items[1]["exemplar"] is None


def test_the_json_formats_stay_as_the_api_gave_them():
    program = Program(id=7, fiscal_year=2008, external_id="H20-07", name="事業", department="課", section="大項目")
    assert program_json(program) == {
        "id": 7, "external_id": "H20-07", "fiscal_year": 2008, "name": "事業", "purpose": "", "activities": "",
        "department": "課", "policy": "", "budget": "", "budget_thousand_yen": None, "keywords": "", "active": True,
    }
    decision = Decision(id=3, proposal_id=1, program_id=7, verdict="accepted", decided_by="x",
                        decided_at=datetime(2026, 4, 1, 9, 0, tzinfo=JST))
    assert decision_json(decision) == {"id": 3, "proposal_id": 1, "program_id": 7, "verdict": "accepted", "note": "",
                                       "decided_by": "x", "decided_at": "2026-04-01T00:00:00Z"}
    run = MatchRun(id=2, status="running", started_at=datetime(2026, 4, 1, 0, 0, 0, 5), mode="lexical")
    assert run_json(run) == {
        "id": 2, "status": "running", "started_at": "2026-04-01T00:00:00.000005Z", "finished_at": None,
        "duration_seconds": None, "n_proposals": 0, "n_programs": 0, "n_suggestions": 0, "n_new": 0, "error": None,
    }


def test_the_suggestion_item_keeps_its_shape():
    row = Suggestion(proposal_id=1, program_id=7, score=1.234567891, rank=2, terms=[["公園", 0.123456789, "name"]],
                     kept_by_decision=True, lexical_score=0.55555555, semantic_score=0.912345678,
                     carried_by="exemplar", exemplar_proposal_id=4)
    program = Program(id=7, fiscal_year=2008, external_id="X", name="事業", department="課")
    assert suggestion_json(row, program, Decision(proposal_id=1, program_id=7, verdict="rejected")) == {
        "rank": 2, "program_id": 7, "program_name": "事業", "department": "課", "score": 1.2346,
        "terms": [{"term": "公園", "weight": 0.123456789, "field": "name", "kind": "word"}], "is_new": False,
        "kept_by_decision": True, "lexical_score": 0.5556, "semantic_score": 0.9123, "carried_by": "exemplar",
        "exemplar": {"proposal_id": 4, "score": None}, "decision": "rejected",
    }
    gone = suggestion_json(row, None, Decision(proposal_id=1, program_id=7, verdict="withdrawn"))
    assert (gone["program_name"], gone["department"], gone["decision"]) == ("", "", None)
    lexical = suggestion_json(Suggestion(proposal_id=1, program_id=7, score=0.1, rank=1), program, None)
    assert lexical["exemplar"] is None and lexical["carried_by"] is None and lexical["terms"] == []


def _refs(schema: Any) -> list[dict[str, Any]]:
    """Every object of the schema that holds a $ref."""
    if isinstance(schema, list):
        return [ref for item in schema for ref in _refs(item)]
    if not isinstance(schema, dict):
        return []
    return ([schema] if "$ref" in schema else []) + [ref for value in schema.values() for ref in _refs(value)]


def test_openapi_components_are_the_models_schemas():
    for name, model in SHOWN.items():
        generated = model.model_json_schema(mode="serialization", ref_template=REF_TEMPLATE)
        definitions = generated.pop("$defs", {})
        assert SCHEMAS[name] == openapi30(generated), name
        for used, definition in definitions.items():
            assert SCHEMAS[used] == openapi30(definition), (name, used)
        assert set(SCHEMAS[name]["required"]) == _keys(name), name  # every key is always there
    text = json.dumps(SCHEMAS)
    assert '"type": "null"' not in text and "$defs" not in text
    for holder in _refs(SCHEMAS):
        assert set(holder) == {"$ref"}, holder  # OpenAPI 3.0 ignores a $ref's siblings
        assert holder["$ref"].removeprefix("#/components/schemas/") in SCHEMAS, holder


def test_openapi_says_what_the_hand_written_components_said():
    suggestion = SCHEMAS["Suggestion"]["properties"]
    assert suggestion["decision"]["enum"] == [v.value for v in CHOSEN_VERDICTS] and suggestion["decision"]["nullable"]
    assert list(get_args(get_args(SuggestionItem.model_fields["decision"].annotation)[0])) == list(CHOSEN_VERDICTS)
    assert suggestion["carried_by"]["enum"] == ["lexical", "semantic", "exemplar"]
    assert suggestion["exemplar"]["nullable"] and suggestion["exemplar"]["description"]
    assert suggestion["terms"]["items"] == {"$ref": "#/components/schemas/SuggestionTerm"}
    assert SCHEMAS["Verdict"]["enum"] == ["accepted", "rejected", "deferred", "withdrawn"]
    assert SCHEMAS["RunStatus"]["enum"] == ["running", "succeeded", "failed"]
    run = SCHEMAS["Run"]["properties"]
    assert run["finished_at"] == {"format": "date-time", "nullable": True, "title": "Finished At", "type": "string"}
    assert "keywords" in SCHEMAS["Program"]["properties"] and SCHEMAS["Program"]["properties"]["keywords"]["description"]


def test_openapi30_wraps_a_nullable_ref():
    schema = {"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}], "description": "d"}
    assert openapi30(schema) == {"allOf": [{"$ref": "#/components/schemas/X"}], "description": "d", "nullable": True}
    assert openapi30({"$ref": "#/components/schemas/X"}) == {"$ref": "#/components/schemas/X"}
