"""Property-based fuzz of every page and form outside the API (issue 13, row 9;
the API has its own schemathesis run): whatever the path, the query string or
a form holds — NUL and control characters, ids past the database's integers,
huge numbers, very long text, markup — the answer is never a 500. The app runs
with TESTING, so an exception in a view fails the test instead of becoming a
500 page."""

from __future__ import annotations

import re

import pytest
from flask import url_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webdata import PASSWORD
from werkzeug.routing import BuildError

# Values people and attackers type.
VALUES = [
    "", " ", "\x00", "a\x00b", "\x7f", "\u202e", "-1", "0", "1", "2147483648", "9" * 30, "1e309", "nan",
    "2026-02-30", "令和8年", "R8-001", "H20-19", "<script>alert(1)</script>", "' OR 1=1 --",
    '=HYPERLINK("http://x","y")', "ｱｲｳ", "子ども" * 2000, "high", "accepted", "received",
]
# The same, random text and integers of any size.
HOSTILE = st.one_of(st.text(max_size=30), st.sampled_from(VALUES), st.integers(min_value=-(2**70), max_value=2**70).map(str))
# The names the console's forms and filters read, and a few they do not.
NAMES = [
    "q", "page", "pairs", "sort", "stage", "department", "min_score", "max_score", "reviewed", "confidence",
    "new", "received_from", "received_to", "pick", "after", "next", "program_id", "proposal_id", "verdict",
    "note", "version", "text", "departments", "message", "due", "name", "into_id", "other_id", "label",
    "username", "password", "display_name", "email", "emails", "parent", "duties", "active", "keywords",
    "budget_thousand_yen", "agreement_date", "period_start", "period_end", "collaboration_type", "opinion",
    "comment", "timing", "confirm", "fiscal_year", "theme_id", "program", "format", "x",
]
# Routes left out: the API (schemathesis), static files, and logging out (the
# rest of the run needs the session).
SKIP = re.compile(r"^(api\.|static$|auth\.logout$)")


def _rules(app, method: str) -> list:
    return sorted(
        (r for r in app.url_map.iter_rules() if method in r.methods and not SKIP.match(r.endpoint)),
        key=lambda r: r.rule,
    )


def _path_values(rule, draw) -> dict:
    values = {}
    for name, converter in rule._converters.items():
        if type(converter).__name__.lower().find("int") >= 0:
            values[name] = draw(st.one_of(st.integers(min_value=0, max_value=3), st.integers(0, 2**62)))
        else:
            values[name] = draw(HOSTILE.filter(lambda v: v.strip() and "/" not in v))
    return values


@st.composite
def requests(draw, rules):
    rule = draw(st.sampled_from(rules))
    path_values = _path_values(rule, draw)
    fields = draw(st.dictionaries(st.sampled_from(NAMES), HOSTILE, max_size=6))
    return rule, path_values, fields


def _url(app, rule, values) -> str | None:
    with app.test_request_context():
        try:
            return url_for(rule.endpoint, **values)
        except (BuildError, ValueError):  # a value the converter refuses to build: nothing to send
            return None


def _log_in(client) -> None:
    assert client.post("/login", data={"username": "coord", "password": PASSWORD}).status_code == 302


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


def test_every_page_and_form_lists_enough_routes(app):
    # The fuzz below reaches the console, the public form and the department's page.
    endpoints = {r.endpoint for r in _rules(app, "GET") + _rules(app, "POST")}
    for expected in ("review.queue", "review.proposal", "public.new_proposal", "programs.department",
                     "opinion_page.opinion", "workflow.ask", "deciding.reject_rest"):
        assert expected in endpoints


def _send(client, method: str, url: str, fields: dict):
    if method == "GET":
        return client.get(url, query_string=fields)
    return client.post(url, data=fields)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_hostile_value_in_every_field_of_every_route(app, client, coordinator, submitted, method):
    # A sweep, not a sample: each value in every field the console reads, on
    # every route, with existing ids (1) and the value itself in name paths.
    _log_in(client)
    for rule in _rules(app, method):
        for value in VALUES:
            path_values = {name: 1 if "int" in type(c).__name__.lower() else (value.strip() or "x").replace("/", "")
                           for name, c in rule._converters.items()}
            url = _url(app, rule, path_values)
            if url is None:
                continue
            response = _send(client, method, url, dict.fromkeys(NAMES, value))
            if response.status_code in (302, 303) and "/login" in response.headers.get("Location", ""):
                _log_in(client)  # a form that ended the session (a password change): log in again
            assert response.status_code < 500, (rule.rule, path_values, value[:40], response.status_code)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_input_makes_a_500(app, client, coordinator, submitted, method):
    rules = _rules(app, method)

    @FUZZ
    @given(requests(rules))
    def check(request):
        rule, path_values, fields = request
        url = _url(app, rule, path_values)
        if url is None:
            return
        _log_in(client)
        response = _send(client, method, url, fields)
        assert response.status_code < 500, (rule.rule, path_values, fields, response.status_code)

    check()
