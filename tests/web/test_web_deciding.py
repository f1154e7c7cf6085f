"""Deciding fast and right on the console (SQLite and PostgreSQL): the page's
version guards against another coordinator's decision, undo is a stack, a
hand pairing accepts the catalogue's id."""

from __future__ import annotations

from sqlmodel import select

from models.tables import Decision, Program, Proposal


def _first_program(session, proposal_id: int) -> Program:
    from models.suggestions import suggestions_for_proposal

    return session.get(Program, suggestions_for_proposal(session=session, proposal_id=proposal_id)[0].program_id)


def test_a_decision_on_a_stale_page_is_refused_with_the_current_state(logged_in, submitted, session):
    program = _first_program(session, submitted.id)
    url = f"/review/proposals/{submitted.id}"
    version = str(session.get(Proposal, submitted.id).version)
    ok = logged_in.post(url + "/decisions", data={"program_id": str(program.id), "verdict": "accepted",
                                                   "version": version})
    assert ok.status_code == 303
    stale = logged_in.post(url + "/decisions", data={"program_id": str(program.id), "verdict": "rejected",
                                                      "version": version})
    assert stale.status_code == 409 and "ほかの担当者が先に更新しました" in stale.data.decode()
    assert 'data-testid="current-verdict">採用' in stale.data.decode()
    assert logged_in.post(url + "/undo", data={"version": version}).status_code == 409
    session.expire_all()
    assert [d.verdict for d in session.exec(select(Decision))] == ["accepted"]


def test_undo_three_times_steps_back_three_decisions(logged_in, submitted, session):
    from models.suggestions import suggestions_for_proposal

    url = f"/review/proposals/{submitted.id}"
    programs = [s.program_id for s in suggestions_for_proposal(session=session, proposal_id=submitted.id)][:3]
    for program_id, verdict in zip(programs, ("accepted", "rejected", "deferred"), strict=True):
        logged_in.post(url + "/decisions", data={"program_id": str(program_id), "verdict": verdict})
    for _ in range(3):
        assert logged_in.post(url + "/undo").status_code == 303
    page = logged_in.get(url).data.decode()
    assert 'data-testid="current-verdict"' not in page  # every pair undecided again
    assert page.count('data-testid="history-row"') == 6
    assert "取り消す判断がありません" in logged_in.post(url + "/undo", follow_redirects=True).data.decode()
    queue = logged_in.get("/review?reviewed=no").data.decode()
    assert "公園の清掃と子どもの環境学習" in queue


def test_a_hand_pairing_accepts_the_catalogue_id_and_keeps_the_note(logged_in, submitted, session):
    program = session.exec(select(Program).where(Program.external_id == "H20-19")).first()
    url = f"/review/proposals/{submitted.id}/pair"
    bad = logged_in.post(url, data={"program_id": "H99-99", "note": "担当課と相談済み"})
    assert bad.status_code == 400 and "担当課と相談済み" in bad.data.decode()
    assert logged_in.post(url, data={"program_id": "H20-19", "note": "担当課と相談済み"}).status_code == 303
    decision = session.exec(select(Decision)).one()
    assert (decision.program_id, decision.note) == (program.id, "担当課と相談済み")
    logged_in.post(f"/review/proposals/{submitted.id}/undo")
    page = logged_in.get(f"/review/proposals/{submitted.id}").data.decode()
    # After undo the hand-made pair is still named and linked in the history.
    assert f'href="/programs/{program.id}">{program.name}</a>' in page


def test_the_audit_trail_reads_as_japanese_sentences_with_links(logged_in, submitted, session):
    program = _first_program(session, submitted.id)
    url = f"/review/proposals/{submitted.id}"
    logged_in.post(url + "/decisions", data={"program_id": str(program.id), "verdict": "accepted"})
    logged_in.post(url + "/stage", data={"stage": "negotiating"})
    page = logged_in.get("/audit").data.decode()
    title = "公園の清掃と子どもの環境学習"
    assert (f'coordが<a href="/review/proposals/{submitted.id}">『{title}』</a>と'
            f'<a href="/programs/{program.id}">『') in page and "の組み合わせを採用" in page
    assert "の段階を「確認中」から「協議中」に変更" in page
    assert '<option value="decision">組み合わせの判断</option>' in page  # the filter names actions in Japanese
    assert "組み合わせの判断" in page  # the filter and the column use the Japanese names


def test_exports_give_current_decisions_by_default_in_csv_and_xlsx(logged_in, submitted, session):
    import csv
    import io
    from urllib.parse import quote

    from openpyxl import load_workbook

    program = _first_program(session, submitted.id)
    url = f"/review/proposals/{submitted.id}"
    logged_in.post(url + "/decisions", data={"program_id": str(program.id), "verdict": "rejected"})
    logged_in.post(url + "/decisions", data={"program_id": str(program.id), "verdict": "accepted", "note": "=1+1"})
    current = logged_in.get("/export/pairings.csv")
    assert f"filename*=UTF-8''{quote('組み合わせと判断.csv')}" in current.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(current.data.decode("utf-8-sig"))))
    assert [(r["判断"], r["メモ"], r["段階"], r["団体名"]) for r in rows] == [("採用", "'=1+1", "確認中", "NPO法人みどりの輪")]
    assert rows[0]["決定番号"].isdigit() and "hanako@example.jp" in rows[0]["連絡先"] and rows[0]["提案内容"]
    history = list(csv.DictReader(io.StringIO(logged_in.get("/export/pairings.csv?history=1").data.decode("utf-8-sig"))))
    assert [r["判断"] for r in history] == ["見送り", "採用"]
    book = logged_in.get("/export/pairings.xlsx")
    assert book.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(book.data)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:2] == ["決定番号", "受付番号"] and len(values) == 2
    memo = values[1][values[0].index("メモ")]
    assert memo == "'=1+1"  # a value, never a live formula
    proposals = load_workbook(io.BytesIO(logged_in.get("/export/proposals.xlsx").data)).active
    assert [c.value for c in next(proposals.iter_rows())][:3] == ["受付番号", "提案ID", "提案タイトル"]


def test_the_department_filter_reads_the_best_suggestion_or_the_accepted_pair(logged_in, submitted, session):
    from models.suggestions import suggestions_for_proposal

    rows = suggestions_for_proposal(session=session, proposal_id=submitted.id)
    best = session.get(Program, rows[0].program_id).department.split()[0]
    others = {d for r in rows[1:] for d in session.get(Program, r.program_id).department.split()} - set(
        session.get(Program, rows[0].program_id).department.split())
    title = "公園の清掃と子どもの環境学習"
    assert title in logged_in.get(f"/review?department={best}").data.decode()
    assert others, "the fixture proposal's suggestions should span several departments"
    lower = sorted(others)[0]  # a department only lower in the list does not pick the proposal
    assert title not in logged_in.get(f"/review?department={lower}").data.decode()
    program = next(r.program_id for r in rows[1:] if lower in session.get(Program, r.program_id).department)
    logged_in.post(f"/review/proposals/{submitted.id}/decisions", data={"program_id": str(program),
                                                                       "verdict": "accepted"})
    assert title in logged_in.get(f"/review?department={lower}").data.decode()


def test_the_received_date_filter(logged_in, submitted):
    from models.clock import JST, utcnow

    today = utcnow().astimezone(JST).date()
    title = "公園の清掃と子どもの環境学習"
    assert title in logged_in.get(f"/review?received_from={today}&received_to={today}").data.decode()
    assert title not in logged_in.get(f"/review?received_to={today.replace(year=today.year - 1)}").data.decode()
    bad = logged_in.get("/review?received_from=yesterday")
    assert bad.status_code == 400 and "2026-04-01 の形" in bad.data.decode()


def test_the_catalogue_search_reads_words_by_their_dictionary_form(logged_in, submitted, session):
    from models.review import search_programs

    # ぼうさい is in no program as typed; the programs that say 防災 are found by its lemma.
    as_written = search_programs(session=session, q="防災", page_size=100).rows
    assert as_written and not search_programs(session=session, q="ぼうさい").rows
    page = logged_in.get("/programs?q=ぼうさい").data.decode()
    assert all(p.name in page for p in as_written if p.active)
    picker = logged_in.get(f"/review/proposals/{submitted.id}?pick=ぼうさい").data.decode()
    assert f'href="/programs/{as_written[0].id}"' in picker
    assert "該当する事業はありません" in logged_in.get(f"/review/proposals/{submitted.id}?pick=ぞうきん").data.decode()


def test_find_programs_matches_kana_and_kanji_spellings(session):
    """Test data written here: a program spelt 子ども, searched as こども and 子供."""
    from office.search import find_programs

    session.add(Program(fiscal_year=2099, external_id="T-1", name="子ども食堂の支援", purpose="地域の子どもの居場所"))
    session.commit()
    for typed in ("こども", "子供", "コドモ食堂"):
        assert [p.name for p in find_programs(session=session, q=typed).rows] == ["子ども食堂の支援"], typed
