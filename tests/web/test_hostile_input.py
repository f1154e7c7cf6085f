"""Hostile input gets a named error, never a 500 (issue 13 row 9), on SQLite and
PostgreSQL: NUL and other control characters in a URL, ids beyond the
database's integer, JSON nested 100,000 deep, import cells too long or too big."""

from __future__ import annotations

import pytest

from web.cli import cli


@pytest.mark.parametrize("path", [
    "/review?q=a%00b", "/programs?q=a%00b", "/review?department=%00", "/audit?action=a%00",
    "/departments/a%00b", "/opinions/a%00b", "/status/" + "a" * 30 + "%00", "/review?q=%1b%5b31m",
])
def test_control_characters_in_a_url_are_a_400_page(logged_in, path):
    response = logged_in.get(path)
    assert response.status_code == 400 and "制御文字" in response.data.decode()


@pytest.mark.parametrize("path", ["/review/proposals/99999999999", "/programs/2147483648",
                                  "/review/proposals/99999999999/decisions"])
def test_ids_beyond_the_database_integer_are_404(logged_in, path):
    method = logged_in.post if path.endswith("decisions") else logged_in.get
    assert method(path).status_code == 404


def test_the_api_names_its_errors(client, auth_headers):
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/v1/proposals", data=deep, content_type="application/json")
    assert response.status_code == 400 and "入れ子が深すぎます" in response.json["message"]
    nul = client.get("/api/v1/programs?q=a%00", headers=auth_headers)
    assert nul.status_code == 400 and nul.is_json
    assert client.get("/api/v1/proposals/99999999999", headers=auth_headers).status_code == 404


HEADER = "id,年度,施策名,目的,事業名,取り組み内容,担当課,予算（千円）\n"


@pytest.mark.parametrize(("row", "message"), [
    ("X1,2026,施策,目的,事業,内容,課,100000000000000000000\n", "予算（千円） 100000000000000000000 is outside"),
    ("X2,2026,施策,目的,事業,内容," + "課" * 600 + ",\n", "department is longer than 500 characters"),
    ("X" * 300 + ",2026,施策,目的,事業,内容,課,\n", "id is longer than 100 characters"),
    ("X4,2026,施策,目的,事業," + "あ" * 140_000 + ",課,\n", "unreadable CSV"),
])
def test_an_import_cell_too_long_or_too_big_is_a_named_line(runner, tmp_path, row, message):
    # Test data written here: one hostile row.
    path = tmp_path / "hostile.csv"
    path.write_text(HEADER + row, encoding="utf-8")
    result = runner.invoke(cli, ["programs", "import", str(path)])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert ":2" in result.output or "line 2" in result.output


def test_a_login_name_with_nul_is_refused_beside_the_field(client, coordinator, session):
    # Found by tests/web/test_console_fuzz.py: PostgreSQL cannot compare a NUL (was a 500).
    response = client.post("/login", data={"username": "co\x00ord", "password": "x" * 12})
    assert response.status_code in (200, 400) and "使用できない" in response.data.decode()
    from office.accounts import log_in

    assert log_in(session=session, username="co\x00ord", password="x" * 12) is None
