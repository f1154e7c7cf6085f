"""The OpenAPI 3 document of /api/v1. The components of what the API shows
(``Proposal``, ``Program``, ``Decision``, ``Run``, ``Suggestion``, ``Theme``…: ``SHOWN``)
and the create body ``ProposalCreate`` come from the models' own JSON schema,
adapted to OpenAPI 3.0; the envelopes (pages, lists, the receipt, errors) and
``DecisionCreate`` are written out by hand. A test compares its paths with the
app's URL map."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import SQLModel

from models.labels import Stage
from models.tables import (
    PROPOSAL_LIMITS,
    DecisionPublic,
    MatchRunPublic,
    ProgramPublic,
    ProposalBase,
    ProposalCreate,
    ProposalPublic,
    RelatedProposalPublic,
    SuggestionItem,
)
from models.theme_tables import ThemeDetailPublic, ThemePublic
from models.workflow_tables import (
    AnswerCreate,
    AnswerPublic,
    OpinionAnswer,
    OpinionRequestCreate,
    OpinionRequestPublic,
)
from web.forms import COLLABORATION_TYPES

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
# corpus.text's control characters (Cc but tab, LF, CR): any URL holding one is a 400.
NO_CONTROL_CHARACTERS = "^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


_NULL = {"type": "null"}
REF_TEMPLATE = "#/components/schemas/{model}"

# What the API shows, by component name: the output of web.api's serializers
# is each model's model_dump(mode="json"), the component its serialization schema.
SHOWN: dict[str, type[SQLModel]] = {
    "Proposal": ProposalPublic,
    "Program": ProgramPublic,
    "Decision": DecisionPublic,
    "Run": MatchRunPublic,
    "Suggestion": SuggestionItem,
    "RelatedProposal": RelatedProposalPublic,
    "Theme": ThemePublic,
    "ThemeDetail": ThemeDetailPublic,
    "OpinionRequest": OpinionRequestPublic,
    "Answer": AnswerPublic,
}
# The workflow's request bodies, from the models the API validates them with.
BODIES: dict[str, type[SQLModel]] = {
    "OpinionRequestCreate": OpinionRequestCreate,
    "OpinionAnswer": OpinionAnswer,
    "AnswerCreate": AnswerCreate,
}


def openapi30(schema: Any) -> Any:
    """A pydantic (JSON Schema 2020-12) schema in OpenAPI 3.0 terms:
    ``anyOf: [X, {type: null}]`` becomes X with ``nullable: true``, and a
    ``$ref`` with other keys (which 3.0 ignores) an ``allOf`` of the one ref."""
    if isinstance(schema, list):
        return [openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: openapi30(value) for key, value in schema.items()}
    variants = out.get("anyOf")
    if isinstance(variants, list) and _NULL in variants:
        rest = [v for v in variants if v != _NULL]
        del out["anyOf"]
        out = {**rest[0], **out} if len(rest) == 1 else {**out, "anyOf": rest}
        out["nullable"] = True
    if "$ref" in out and len(out) > 1:
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def _create_body(schema: dict[str, Any]) -> dict[str, Any]:
    """ProposalCreate as POST /api/v1/proposals takes it: the NPO's fields only
    (no external_ref) and no other key, as the form asks (what PROPOSAL_LIMITS
    does not mark optional is required and not empty; null is an absent key),
    and 希望する協働の形 by code or Japanese label."""
    properties: dict[str, Any] = {}
    for key in ProposalBase.model_fields:
        prop = {k: v for k, v in schema["properties"][key].items() if k != "default"}
        if PROPOSAL_LIMITS[key].optional:
            prop["nullable"] = True
        elif prop.get("type") == "string":
            prop["minLength"] = 1
        properties[key] = prop
    properties["email"]["format"] = "email"
    properties["collaboration_type"] = {
        "title": properties["collaboration_type"]["title"],
        "type": "string",
        "enum": list(COLLABORATION_TYPES) + list(COLLABORATION_TYPES.values()),
        "description": "委託 / 補助 / 共催 / 後援 / その他, or the stored code",
    }
    required = [key for key in properties if not PROPOSAL_LIMITS[key].optional]
    return {**schema, "properties": properties, "required": required, "additionalProperties": False}


def model_schemas() -> dict[str, Any]:
    """The components ProposalCreate (the create body) and those of SHOWN, with
    the enums and objects they refer to, from the models' JSON schema."""
    create = ProposalCreate.model_json_schema(ref_template=REF_TEMPLATE)
    definitions = create.pop("$defs", {})
    schemas = {"ProposalCreate": _create_body(create)}
    for name, model in SHOWN.items():
        schemas[name] = model.model_json_schema(mode="serialization", ref_template=REF_TEMPLATE)
        definitions.update(schemas[name].pop("$defs", {}))
    for name, model in BODIES.items():
        # No other key is accepted (web.api_workflow.validated).
        schemas[name] = {**model.model_json_schema(ref_template=REF_TEMPLATE), "additionalProperties": False}
        definitions.update(schemas[name].pop("$defs", {}))
    used = json.dumps(schemas)
    schemas.update({name: d for name, d in definitions.items() if f'"{REF_TEMPLATE.format(model=name)}"' in used})
    return openapi30(schemas)


def _page_of(item: str) -> dict[str, Any]:
    """A page of a list endpoint (web.api._page_json)."""
    return {
        "type": "object",
        "required": ["items", "page", "per_page", "total", "pages"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
            "pages": {"type": "integer"},
        },
    }


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
    "ProposalReceipt": {
        "type": "object",
        "required": ["id", "receipt_number", "stage", "status_url"],
        "properties": {
            "id": _ID,
            "receipt_number": {"type": "string"},
            "stage": {"type": "string"},
            "status_url": {"type": "string", "format": "uri"},
        },
    },
    "ProposalPage": _page_of("Proposal"),
    "SuggestionList": {
        "type": "object",
        "required": ["proposal_id", "no_match", "confidence", "ambiguous", "items"],
        "properties": {
            "proposal_id": _ID,
            "no_match": {
                "type": "boolean",
                "description": "no suggested program is a credible partner (confidence low): the rule of the index "
                "that scored them (lexical: best score < 0.0568; semantic: best lexical_score + 2 × best "
                "semantic_score < 1.7838)",
            },
            "confidence": {
                "type": "string",
                "nullable": True,
                "enum": ["high", "medium", "low", None],
                "description": "how sure the matcher is of the first suggestion (docs/quality.md): high, medium, "
                "or low (= no_match); null when the proposal was matched before levels existed or not yet",
            },
            "ambiguous": {
                "type": "boolean",
                "description": "the first two programs belong to different departments and are within the "
                "calibrated margin of each other",
            },
            "items": {"type": "array", "items": _ref("Suggestion")},
        },
    },
    "RelatedList": {
        "type": "object",
        "required": ["proposal_id", "merged_into_id", "items"],
        "properties": {
            "proposal_id": _ID,
            "merged_into_id": _nullable({**_ID, "description": "the proposal this one was merged into (統合先)"}),
            "items": {"type": "array", "items": _ref("RelatedProposal")},
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
    "DecisionList": {
        "type": "object",
        "required": ["proposal_id", "items"],
        "properties": {"proposal_id": _ID, "items": {"type": "array", "items": _ref("Decision")}},
    },
    "ProgramPage": _page_of("Program"),
    "ThemePage": _page_of("Theme"),
    "RunList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": _ref("Run")}}},
    "OpinionRequestList": {"type": "object", "required": ["items"],
                           "properties": {"items": {"type": "array", "items": _ref("OpinionRequest")}}},
    "AnswerState": {
        "type": "object",
        "required": ["draft", "published"],
        # OpenAPI 3.0 ignores keys beside a $ref: a nullable reference is an allOf.
        "properties": {"draft": {"allOf": [_ref("Answer")], "nullable": True},
                       "published": {"allOf": [_ref("Answer")], "nullable": True}},
    },
    "ProposalDetail": {
        "allOf": [_ref("Proposal"), {"type": "object", "required": ["answer"],
                                      "properties": {"answer": _ref("AnswerState")}}],
    },
    **model_schemas(),
}

_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]
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
            parameters=[*_PAGING, {"name": "stage", "in": "query", "required": False,
                                   "schema": {"type": "string", "enum": [s.value for s in Stage]}}],
        ),
    },
    "/api/v1/proposals/{proposal_id}": {
        "get": _op("One proposal, its stage and its draft and published answer",
                   {"200": _json(_ref("ProposalDetail"), "the proposal"), "404": _error("no such proposal")},
                   parameters=[_PROPOSAL_ID]),
    },
    "/api/v1/proposals/{proposal_id}/opinion-requests": {
        "get": _op("Opinion requests (所見照会) and their answers, oldest first",
                   {"200": _json(_ref("OpinionRequestList"), "requests"), "404": _error("no such proposal")},
                   parameters=[_PROPOSAL_ID]),
        "post": _op(
            "Ask one department for its opinion; the department gets an e-mail with its link",
            {"201": _json(_ref("OpinionRequest"), "asked (the link is never shown)"),
             "400": _error("invalid body, unknown department or a due date in the past"),
             "404": _error("no such proposal"), "413": _error("request too large")},
            parameters=[_PROPOSAL_ID],
            requestBody={"required": True, "content": {"application/json": {"schema": _ref("OpinionRequestCreate")}}},
        ),
    },
    "/api/v1/opinions/{token}": {
        "post": _op(
            "The department's answer, with the token of its link (no other authentication)",
            {"201": _json(_ref("OpinionRequest"), "answered"), "400": _error("invalid body"),
             "404": _error("tampered or unknown link"), "409": _error("answered already"),
             "410": _error("link expired or request withdrawn"), "413": _error("request too large")},
            auth=False,
            parameters=[{"name": "token", "in": "path", "required": True,
                         "schema": {"type": "string", "maxLength": 300}}],
            requestBody={"required": True, "content": {"application/json": {"schema": _ref("OpinionAnswer")}}},
        ),
    },
    "/api/v1/proposals/{proposal_id}/answer": {
        "put": _op(
            "Save the draft answer to the NPO (the NPO sees nothing yet)",
            {"200": _json(_ref("AnswerState"), "saved"), "400": _error("invalid body"),
             "404": _error("no such proposal"), "413": _error("request too large")},
            parameters=[_PROPOSAL_ID],
            requestBody={"required": True, "content": {"application/json": {"schema": _ref("AnswerCreate")}}},
        ),
    },
    "/api/v1/proposals/{proposal_id}/answer/publish": {
        "post": _op(
            "Publish the draft: the NPO's status page shows it and an e-mail tells the NPO",
            {"200": _json(_ref("AnswerState"), "published"), "404": _error("no such proposal"),
             "409": _error("no draft to publish")},
            parameters=[_PROPOSAL_ID],
        ),
    },
    "/api/v1/proposals/{proposal_id}/suggestions": {
        "get": _op("Suggested programs, best first",
                   {"200": _json(_ref("SuggestionList"), "suggestions"), "404": _error("no such proposal")},
                   parameters=[_PROPOSAL_ID]),
    },
    "/api/v1/proposals/{proposal_id}/related": {
        "get": _op("The most similar other proposals (any stage, any fiscal year), best first",
                   {"200": _json(_ref("RelatedList"), "related proposals"), "404": _error("no such proposal")},
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
                                          "schema": {"type": "string", "maxLength": 100,
                                                     "pattern": NO_CONTROL_CHARACTERS}}]),
    },
    "/api/v1/programs/{program_id}": {
        "get": _op("One program", {"200": _json(_ref("Program"), "the program"), "404": _error("no such program")},
                   parameters=[{"name": "program_id", "in": "path", "required": True, "schema": _ID}]),
    },
    "/api/v1/themes": {
        "get": _op("Themes of the open proposals, most groups first",
                   {"200": _json(_ref("ThemePage"), "a page of themes"), "400": _error("bad query")},
                   parameters=_PAGING),
    },
    "/api/v1/themes/{theme_id}": {
        "get": _op("One theme: its open proposals, the programs and departments they share",
                   {"200": _json(_ref("ThemeDetail"), "the theme"), "404": _error("no such theme")},
                   parameters=[{"name": "theme_id", "in": "path", "required": True, "schema": _ID}]),
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
            "description": "Proposals, suggestions, decisions, programs, themes and runs of kyodo-match.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "kyodo tokens create NAME"}},
        },
    }
