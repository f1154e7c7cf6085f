"""A department's page (/departments/<name>) a page at a time: its programs
(?page=) and the proposals matched or paired with them (?pairs=), counted and
sliced in the database by the same membership rule as
corpus.programs.split_departments (models/department_page.py); on SQLite and
PostgreSQL."""

from __future__ import annotations

import random
import re
from urllib.parse import quote

from factories import PROPOSAL_TEXTS, create_random_proposal, decide
from sqlmodel import col, select

from corpus.programs import split_departments
from models.department_page import in_department, separators
from models.suggestions import latest_run_id, visible
from models.tables import Decision, Program, Suggestion
from web.cli import cli

NAME = "テスト課"
MEMBERS = [NAME] * 12 + ["環境課・テスト課", "テスト課\u3000地域振興課", "広報課／テスト課"]
OTHERS = ["地球テスト課", "テスト課分室", "テスト", "テスト課課", "広報課"]


def _add_programs(session, cells: list[str], text: str = "") -> list[int]:
    rows = [
        Program(fiscal_year=2030, external_id=f"T-{n:04d}-{random.randrange(10**9)}", name=f"試験事業{n:04d}",
                purpose=text or f"試験の目的{n}", department=cell)
        for n, cell in enumerate(cells)
    ]
    session.add_all(rows)
    session.commit()
    return [int(r.id) for r in rows]


def _page(client, **query) -> str:
    args = "&".join(f"{k}={v}" for k, v in query.items())
    response = client.get(f"/departments/{quote(NAME)}?{args}")
    assert response.status_code == 200
    return response.data.decode()


def _listed_programs(html: str) -> list[str]:
    block = re.search(r'data-testid="department-programs">(.*?)</ul>', html, re.S).group(1)
    return re.findall(r">(試験事業\d{4})</a>", block)


def test_the_programs_come_a_page_at_a_time_and_only_the_departments(logged_in, app, session):
    _add_programs(session, MEMBERS + OTHERS)
    app.config["PAGE_SIZE"] = 5
    first = _page(logged_in)
    assert "担当事業（15件）" in first
    assert "1 / 3 ページ（15件）" in first
    assert f'href="/departments/{quote(NAME)}?page=2&amp;pairs=1"' in first
    pages = [_listed_programs(_page(logged_in, page=n)) for n in (1, 2, 3)]
    assert [len(p) for p in pages] == [5, 5, 5]
    seen = [name for page in pages for name in page]
    assert sorted(seen) == [f"試験事業{n:04d}" for n in range(len(MEMBERS))]  # the members, once each
    assert _listed_programs(_page(logged_in, page=99)) == pages[2]  # past the end: the last page
    for junk in ("abc", "-1", "0", "１", "9" * 30):
        assert _listed_programs(_page(logged_in, page=junk)) == pages[0]


def test_a_department_without_programs_or_record_is_404(logged_in):
    assert logged_in.get(f"/departments/{quote('地球テスト課')}").status_code == 404


def test_the_sql_rule_is_split_departments(session):
    # Cells of names, every separator, ASCII letters in both cases (SQLite's LIKE
    # would ignore the case) and near misses; compared with the Python rule.
    rng = random.Random(20260401)
    names = ["テスト課", "環境課", "Ａ課", "IT課", "it課", "テ"]
    glue = list(separators()) + ["", "課", "x"]
    cells = []
    for _ in range(300):
        parts = [rng.choice(names) for _ in range(rng.randint(1, 4))]
        cells.append("".join(p + rng.choice(glue) * rng.randint(0, 2) for p in parts))
    ids = dict(zip(_add_programs(session, cells), cells, strict=True))
    for name in names:
        found = set(session.exec(select(col(Program.id)).where(in_department(session, name), col(Program.id).in_(ids))))
        expected = {i for i, cell in ids.items() if name in split_departments(cell)}
        assert found == expected, name
        assert expected, f"no cell names {name}: the sample tests nothing"


def _rematch(app) -> None:
    from click.testing import CliRunner

    result = CliRunner(env={"KYODO_DATABASE_URL": app.config["DATABASE_URL"],
                            "KYODO_INSTANCE_PATH": app.instance_path}).invoke(cli, ["rematch"])
    assert result.exit_code == 0, result.output


def _pairs(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-testid="pair-row">\s*<td><a href="/review/proposals/(\d+)">.*?'
                      r'<a href="/programs/(\d+)">', html, re.S)


def test_the_matched_proposals_come_a_page_at_a_time(logged_in, app, session):
    # Six proposals, each with its own five programs of the department written
    # like it: 30 suggestions on the department's programs.
    proposals = [create_random_proposal(session, topic) for topic in PROPOSAL_TEXTS]
    for title, body in PROPOSAL_TEXTS.values():
        _add_programs(session, [NAME] * 5, text=f"{title}。{body}")
    [spare] = _add_programs(session, [NAME], text="庁舎の電話交換機を更新する。")
    _rematch(app)
    # And one pair decided by hand on a program of the department not suggested.
    suggested = {(s.proposal_id, s.program_id) for s in session.exec(
        select(Suggestion).where(visible(latest_run_id(session=session))))}
    members = set(session.exec(select(col(Program.id)).where(col(Program.department) == NAME)))
    assert spare not in {b for _, b in suggested}
    decide(session, int(proposals[0].id), spare, "accepted")
    expected = {(a, b) for a, b in suggested if b in members} | {(int(proposals[0].id), spare)}
    assert len(expected) >= 26

    app.config["PAGE_SIZE"] = 10
    first = _page(logged_in)
    assert f"マッチした提案と判断（{len(expected)}件）" in first
    n_pages = -(-len(expected) // 10)
    assert f"1 / {n_pages} ページ（{len(expected)}件）" in first
    shown = [_pairs(_page(logged_in, pairs=n)) for n in range(1, n_pages + 1)]
    assert [len(rows) for rows in shown] == [10] * (n_pages - 1) + [len(expected) - 10 * (n_pages - 1)]
    flat = [(int(a), int(b)) for rows in shown for a, b in rows]
    assert len(flat) == len(set(flat)) and set(flat) == expected
    assert flat[-1] == (int(proposals[0].id), spare), "the hand-made pair comes after the suggestions"
    last = _page(logged_in, pairs=n_pages)
    assert "採用" in last and "（手動）" in last
    # Turning the pairs' page keeps the programs' page, and the other way round.
    assert f'href="/departments/{quote(NAME)}?page=1&amp;pairs=2"' in first
    decision = session.exec(select(Decision).where(col(Decision.program_id) == spare)).one()
    assert decision.verdict == "accepted"
