"""Every response's security headers and a Content-Security-Policy the pages
keep (no inline script, style or handler: checked in the templates, the
rendered pages and Debian's chromium), the status token kept out of the
session cookie, and the rate limit's store shared by workers (web/security.py,
web/ratelimit.py; docs/security.md)."""

from __future__ import annotations

import base64
import re
import uuid
import zlib
from pathlib import Path

import pytest
from sqlmodel import Session, select
from test_browser import _coordinator_page, _fill_form, browser, served  # noqa: F401
from webdata import PASSWORD, PROPOSAL

from models.tables import MailMessage
from office.accounts import create_user
from web import create_app
from web.db import dispose, get_engine
from web.security import CONTENT_SECURITY_POLICY

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
REDIS = "redis://127.0.0.1:6379/0"
SAME_ORIGIN = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _headers(response, names=SAME_ORIGIN) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in names}


# -- the headers ---------------------------------------------------------------------


def test_every_kind_of_response_has_the_security_headers(logged_in):
    responses = {
        "page": logged_in.get("/"),
        "form": logged_in.get("/proposals/new"),
        "console": logged_in.get("/review"),
        "static": logged_in.get("/static/style.css"),
        "json": logged_in.get("/api/v1/openapi.json"),
        "csv": logged_in.get("/programs/export.csv"),
        "404": logged_in.get("/no-such-page"),
        "405": logged_in.delete("/proposals/new"),
        "api 401": logged_in.get("/api/v1/proposals"),
    }
    assert {kind: r.status_code for kind, r in responses.items()} == {
        "page": 200, "form": 200, "console": 200, "static": 200, "json": 200, "csv": 200,
        "404": 404, "405": 405, "api 401": 401,
    }
    for kind, response in responses.items():
        response.close()  # the static file's
        assert _headers(response) == SAME_ORIGIN, kind
        assert "Strict-Transport-Security" not in response.headers, "HSTS over plain HTTP"


def test_over_tls_the_browser_is_told_to_stay_on_it(client):
    response = client.get("/", base_url="https://kyodo.example.lg.jp")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_pages_addressed_by_a_secret_send_no_referrer_and_are_not_cached(client, submitted):
    secret_urls = {
        "status": client.get(submitted.status_path),
        "unknown status": client.get("/status/" + "A" * 32),
        "opinion link": client.get("/opinions/not-a-valid-link"),
        "setup link": client.get("/setup/not-a-valid-token"),
    }
    for kind, response in secret_urls.items():
        assert response.headers["Referrer-Policy"] == "no-referrer", kind
        assert response.headers["Cache-Control"] == "no-store", kind
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, kind
    # The receipt shows the status link: no cache keeps it either.
    assert client.get("/proposals/receipt").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")


# -- nothing inline -----------------------------------------------------------------


INLINE = {
    "an inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "an on*= handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "a style attribute": re.compile(r"\sstyle\s*=", re.I),
    "a <style> element": re.compile(r"<style[\s>]", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
}


def _inline(html: str) -> list[str]:
    return [name for name, pattern in INLINE.items() if pattern.search(html)]


def test_no_template_has_inline_script_style_or_handlers():
    pages = [p for p in TEMPLATES.rglob("*.html") if "mail" not in p.parts]
    assert len(pages) > 30
    found = {str(p.relative_to(TEMPLATES)): _inline(p.read_text(encoding="utf-8")) for p in pages}
    assert {name: what for name, what in found.items() if what} == {}


def test_rendered_pages_with_score_bars_have_nothing_inline(logged_in, submitted):
    for path in ("/review", f"/review/proposals/{submitted.id}", "/proposals/new"):
        html = logged_in.get(path).data.decode()
        assert _inline(html) == [], path
    page = logged_in.get(f"/review/proposals/{submitted.id}").data.decode()
    assert re.search(r'class="bar" aria-hidden="true"><span class="w(100|[1-9]?[05])"></span>', page)


# -- the status token stays out of the session cookie --------------------------------


def _session_payload(client) -> str:
    """What anyone holding the cookie can read: Flask signs it, it does not encrypt it."""
    value = client.get_cookie("session").value
    payload = value.lstrip(".").split(".")[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(data) if value.startswith(".") else data).decode()


def _status_token(session) -> str:
    [receipt] = session.exec(select(MailMessage).where(MailMessage.kind == "receipt")).all()
    assert receipt.secret
    return receipt.secret


def test_the_status_token_is_never_in_the_session_cookie_and_shown_once(client, session):
    assert client.post("/proposals/new", data=PROPOSAL).status_code == 303
    token = _status_token(session)
    assert token not in _session_payload(client)
    first = client.get("/proposals/receipt").data.decode()
    assert f"/status/{token}</a>" in first
    assert token not in _session_payload(client)
    again = client.get("/proposals/receipt").data.decode()  # a reload: the number, not the link
    assert token not in again and 'data-testid="status-link-sent"' in again
    assert 'data-testid="receipt-number">' in again


def test_the_receipt_shown_by_another_worker_has_the_link(app, session):
    shared = {"RATELIMIT_STORAGE_URI": REDIS}
    posting, showing = create_app({**app.config, **shared}), create_app({**app.config, **shared})
    try:
        first = posting.test_client()
        assert first.post("/proposals/new", data=PROPOSAL).status_code == 303
        second = showing.test_client()
        second.set_cookie("session", first.get_cookie("session").value)
        assert f"/status/{_status_token(session)}</a>" in second.get("/proposals/receipt").data.decode()
        assert 'data-testid="status-link-sent"' in first.get("/proposals/receipt").data.decode()
    finally:
        dispose(posting)
        dispose(showing)


# -- one count for every worker ------------------------------------------------------


def _twin(app, **config):
    """Another process's app on the same database: a second gunicorn worker, or one restarted."""
    return create_app({**app.config, **config})


def _post(app, address: str) -> int:
    return app.test_client().post("/proposals/new", data=PROPOSAL, environ_base={"REMOTE_ADDR": address}).status_code


def _address() -> str:
    """An address of this test alone: the Redis counts outlive it by a minute."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250}"


def test_redis_counts_are_shared_by_workers_and_survive_a_restart(app):
    shared = {"RATELIMIT_STORAGE_URI": REDIS, "SUBMIT_RATE_LIMIT": "3/minute"}
    address = _address()
    one, two = _twin(app, **shared), _twin(app, **shared)
    try:
        assert [_post(one, address), _post(two, address), _post(one, address), _post(two, address)] == [
            303, 303, 303, 429]
        restarted = _twin(app, **shared)
        assert _post(restarted, address) == 429, "a restarted worker started from zero"
        dispose(restarted)
    finally:
        dispose(one)
        dispose(two)


def test_memory_counts_are_per_process(app):
    # Why memory:// is refused under several gunicorn workers: each counts apart.
    alone = {"RATELIMIT_STORAGE_URI": "memory://", "SUBMIT_RATE_LIMIT": "1/minute"}
    one, two = _twin(app, **alone), _twin(app, **alone)
    try:
        assert [_post(one, "10.0.0.1"), _post(two, "10.0.0.1"), _post(one, "10.0.0.1")] == [303, 303, 429]
    finally:
        dispose(one)
        dispose(two)


# -- in the browser ------------------------------------------------------------------


@pytest.mark.browser
def test_the_policy_blocks_nothing_the_pages_use(browser, tmp_path):  # noqa: F811
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "browser" * 5,
                      "MATCH_MODE": "lexical"})
    with Session(get_engine(app)) as db:
        create_user(session=db, username="coord", password=PASSWORD)
    with served(app) as url:
        refused: list[str] = []
        npo = browser.new_page(viewport={"width": 1000, "height": 900})
        npo.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        npo.goto(url + "/proposals/new")
        _fill_form(npo)
        npo.get_by_role("button", name="入力内容を確認する").click()
        npo.get_by_role("button", name="提案を送信").click()
        npo.wait_for_url("**/proposals/receipt")
        coordinator = _coordinator_page(browser, url)
        coordinator.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        coordinator.goto(url + "/review")
        coordinator.get_by_role("link", name=PROPOSAL["title"]).click()
        bar = coordinator.locator(".bar > span").first
        assert bar.evaluate("e => e.getBoundingClientRect().width") > 0, "the score bar has no width"
        # decide.js runs and its fetch is allowed: "a" accepts the focused suggestion without a reload.
        assert coordinator.locator("[data-testid=suggestion].focused").count() == 1
        coordinator.keyboard.press("a")
        coordinator.get_by_test_id("current-verdict").first.wait_for()
        assert coordinator.get_by_test_id("current-verdict").first.inner_text() == "採用"
        assert refused == []
        npo.close()
        coordinator.close()
