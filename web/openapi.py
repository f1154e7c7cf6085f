"""The OpenAPI 3 document of /api/v1, written out by hand so it says what the
API promises; a test compares its paths with the app's URL map."""

from __future__ import annotations

from typing import Any

from web.forms import COLLABORATION_TYPES, MAX_BUDGET, MAX_LENGTHS

_TIME = {"type": "string", "format": "date-time"}
_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _text(key: str, min_length: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": MAX_LENGTHS[key]}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        },
    },
    "ProposalCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["organization", "representative", "email", "title", "body", "expected_effect",
                     "collaboration_type"],
        "properties": {
            "organization": _text("organization"),
            "representative": _text("representative"),
            "email": {"type": "string", "format": "email", "maxLength": MAX_LENGTHS["email"]},
            "phone": _nullable({"type": "string", "maxLength": MAX_LENGTHS["phone"]}),
            "title": _text("title"),
            "body": _text("body"),
            "expected_effect": _text("expected_effect"),
            "collaboration_type": {
                "type": "string",
                "enum": list(COLLABORATION_TYPES) + list(COLLABORATION_TYPES.values()),
                "description": "委託 / 補助 / 共催 / 後援 / その他, or the stored code",
            },
            "budget_thousand_yen": _nullable({"type": "integer", "minimum": 0, "maximum": MAX_BUDGET}),
        },
    },
    "ProposalReceipt": {
        "type": "object",
        "required": ["id", "receipt_number", "status", "status_url"],
        "properties": {
            "id": _ID,
            "receipt_number": {"type": "string"},
            "status": {"type": "string"},
            "status_url": {"type": "string", "format": "uri"},
        },
    },
    "Proposal": {
        "type": "object",
        "required": ["id", "receipt_number", "status", "title", "body", "created_at", "updated_at"],
        "properties": {
            "id": _ID,
            "receipt_number": _nullable({"type": "string"}),
            "status": {"type": "string", "enum": ["received", "reviewing", "matched", "declined"]},
            "status_label": {"type": "string"},
            "organization": {"type": "string"},
            "representative": {"type": "string"},
            "email": {"type": "string"},
            "phone": _nullable({"type": "string"}),
            "title": {"type": "string"},
            "body": {"type": "string"},
            "expected_effect": {"type": "string"},
            "collaboration_type": {"type": "string"},
            "budget_thousand_yen": _nullable({"type": "integer"}),
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    },
    "ProposalPage": {
        "type": "object",
        "required": ["items", "page", "per_page", "total", "pages"],
        "properties": {
            "items": {"type": "array", "items": _ref("Proposal")},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
            "pages": {"type": "integer"},
        },
    },
    "Term": {
        "type": "object",
        "required": ["term", "weight", "field"],
        "properties": {"term": {"type": "string"}, "weight": {"type": "number"}, "field": {"type": "string"}},
    },
    "Suggestion": {
        "type": "object",
        "required": ["rank", "program_id", "program_name", "department", "score", "terms", "is_new", "decision"],
        "properties": {
            "rank": {"type": "integer"},
            "program_id": _ID,
            "program_name": {"type": "string"},
            "department": {"type": "string"},
            "score": {
                "type": "number",
                "description": "the TF-IDF cosine; in semantic mode the fused score (a weighted sum of "
                "z-scores that ranks one proposal's programs, not comparable across proposals)",
            },
            "terms": {"type": "array", "items": _ref("Term")},
            "is_new": {"type": "boolean", "description": "pair absent from the previous run"},
            "kept_by_decision": {"type": "boolean"},
            "lexical_score": _nullable({
                "type": "number",
                "description": "semantic mode: the TF-IDF cosine (the sum of the terms' weights); null in lexical mode",
            }),
            "semantic_score": _nullable({
                "type": "number",
                "description": "semantic mode: the e5 embedding cosine; null in lexical mode",
            }),
            "carried_by": _nullable({
                "type": "string",
                "enum": ["lexical", "semantic", "exemplar"],
                "description": "semantic mode: \"semantic\" (意味的に近い) when the embedding placed the program "
                "higher than TF-IDF alone would have, so the shared terms do not explain it; \"exemplar\" "
                "(採用済みの提案に近い) when its likeness to a proposal already accepted for the program did; "
                "null in lexical mode",
            }),
            "exemplar": _nullable({
                "type": "object",
                "description": "semantic mode: the nearest proposal already accepted for this program "
                "and the e5 cosine of the two proposals; null when the program has none",
                "required": ["proposal_id", "score"],
                "properties": {"proposal_id": {"type": "integer"}, "score": {"type": "number"}},
            }),
            "decision": _nullable({"type": "string", "enum": ["accepted", "rejected", "deferred"]}),
        },
    },
    "SuggestionList": {
        "type": "object",
        "required": ["proposal_id", "no_match", "items"],
        "properties": {
            "proposal_id": _ID,
            "no_match": {
                "type": "boolean",
                "description": "no suggested program is a credible partner: the rule of the index that scored "
                "them (lexical: best score < 0.09; semantic: best lexical_score + 2 × best semantic_score < 1.82)",
            },
            "items": {"type": "array", "items": _ref("Suggestion")},
        },
    },
    "DecisionCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["program_id", "verdict"],
        "properties": {
            "program_id": _ID,
            "verdict": {"type": "string", "enum": ["accepted", "rejected", "deferred"]},
            "note": _nullable({"type": "string", "maxLength": 2000}),
        },
    },
    "Decision": {
        "type": "object",
        "required": ["id", "proposal_id", "program_id", "verdict", "note", "decided_by", "decided_at"],
        "properties": {
            "id": _ID,
            "proposal_id": _ID,
            "program_id": _ID,
            "verdict": {
                "type": "string",
                "enum": ["accepted", "rejected", "deferred", "withdrawn"],
                "description": "withdrawn: an undo that left the pair undecided",
            },
            "note": {"type": "string"},
            "decided_by": {"type": "string"},
            "decided_at": _TIME,
        },
    },
    "DecisionList": {
        "type": "object",
        "required": ["proposal_id", "items"],
        "properties": {"proposal_id": _ID, "items": {"type": "array", "items": _ref("Decision")}},
    },
    "Program": {
        "type": "object",
        "required": ["id", "external_id", "fiscal_year", "name", "department", "active"],
        "properties": {
            "id": _ID,
            "external_id": {"type": "string"},
            "fiscal_year": {"type": "integer"},
            "name": {"type": "string"},
            "purpose": {"type": "string"},
            "activities": {"type": "string"},
            "department": {"type": "string"},
            "policy": {"type": "string"},
            "budget": {"type": "string"},
            "budget_thousand_yen": _nullable({"type": "integer"}),
            "keywords": {
                "type": "string",
                "description": "The coordinator's everyday words for the program (キーワード), one text; "
                "not part of the city's plan.",
            },
            "active": {"type": "boolean"},
        },
    },
    "ProgramPage": {
        "type": "object",
        "required": ["items", "page", "per_page", "total", "pages"],
        "properties": {
            "items": {"type": "array", "items": _ref("Program")},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
            "pages": {"type": "integer"},
        },
    },
    "Run": {
        "type": "object",
        "required": ["id", "status", "started_at"],
        "properties": {
            "id": _ID,
            "status": {"type": "string", "enum": ["running", "succeeded", "failed"]},
            "started_at": _TIME,
            "finished_at": _nullable(_TIME),
            "duration_seconds": _nullable({"type": "number"}),
            "n_proposals": {"type": "integer"},
            "n_programs": {"type": "integer"},
            "n_suggestions": {"type": "integer"},
            "n_new": {"type": "integer"},
            "error": _nullable({"type": "string"}),
        },
    },
    "RunList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": _ref("Run")}}},
}

_AUTH = [{"bearer": []}]
_UNAUTHORIZED = {"401": _error("missing, unknown or revoked token"), "403": _error("token's user deactivated")}
_PROPOSAL_ID = {"name": "proposal_id", "in": "path", "required": True, "schema": _ID}
_PAGING = [
    {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
    {"name": "per_page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
]


def _op(summary: str, responses: dict[str, Any], *, auth: bool = True, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if auth:
        op["security"] = _AUTH
        op["responses"] = {**responses, **_UNAUTHORIZED}
    else:
        op["security"] = []
    return op


PATHS: dict[str, Any] = {
    "/api/v1/openapi.json": {
        "get": _op("This document", {"200": {"description": "OpenAPI 3 document",
                                             "content": {"application/json": {"schema": {"type": "object"}}}}},
                   auth=False),
    },
    "/api/v1/proposals": {
        "post": _op(
            "Submit a proposal (public; rate-limited per client address)",
            {
                "201": _json(_ref("ProposalReceipt"), "stored, with its first suggestions"),
                "400": _error("invalid JSON or fields"),
                "413": _error("request too large"),
                "429": _error("too many submissions from this address"),
            },
            auth=False,
            requestBody={"required": True, "content": {"application/json": {"schema": _ref("ProposalCreate")}}},
        ),
        "get": _op(
            "List proposals, newest first",
            {"200": _json(_ref("ProposalPage"), "a page of proposals"), "400": _error("bad query")},
            parameters=[*_PAGING, {"name": "status", "in": "query", "required": False,
                                   "schema": {"type": "string", "enum": ["received", "reviewing", "matched", "declined"]}}],
        ),
    },
    "/api/v1/proposals/{proposal_id}": {
        "get": _op("One proposal", {"200": _json(_ref("Proposal"), "the proposal"), "404": _error("no such proposal")},
                   parameters=[_PROPOSAL_ID]),
    },
    "/api/v1/proposals/{proposal_id}/suggestions": {
        "get": _op("Suggested programs, best first",
                   {"200": _json(_ref("SuggestionList"), "suggestions"), "404": _error("no such proposal")},
                   parameters=[_PROPOSAL_ID]),
    },
    "/api/v1/proposals/{proposal_id}/decisions": {
        "get": _op("Decision history, oldest first",
                   {"200": _json(_ref("DecisionList"), "decisions"), "404": _error("no such proposal")},
                   parameters=[_PROPOSAL_ID]),
        "post": _op(
            "Record a decision on a pair",
            {"201": _json(_ref("Decision"), "recorded"), "400": _error("invalid body"),
             "404": _error("no such proposal or program"), "413": _error("request too large")},
            parameters=[_PROPOSAL_ID],
            requestBody={"required": True, "content": {"application/json": {"schema": _ref("DecisionCreate")}}},
        ),
    },
    "/api/v1/programs": {
        "get": _op("The catalogue, searchable",
                   {"200": _json(_ref("ProgramPage"), "a page of programs"), "400": _error("bad query")},
                   parameters=[*_PAGING, {"name": "q", "in": "query", "required": False,
                                          "schema": {"type": "string", "maxLength": 100}}]),
    },
    "/api/v1/programs/{program_id}": {
        "get": _op("One program", {"200": _json(_ref("Program"), "the program"), "404": _error("no such program")},
                   parameters=[{"name": "program_id", "in": "path", "required": True, "schema": _ID}]),
    },
    "/api/v1/runs": {
        "get": _op("Rematch runs, newest first", {"200": _json(_ref("RunList"), "runs")}),
    },
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "協働マッチ API",
            "version": "1",
            "description": "Proposals, suggestions, decisions, programs and runs of kyodo-match.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "kyodo tokens create NAME"}},
        },
    }
