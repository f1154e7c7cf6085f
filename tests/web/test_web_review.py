"""The coordinator console: dashboard, queue, proposal page, decisions, undo,
hand pairing, programs, departments, export and audit."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlmodel import select

from models.suggestions import suggestions_for_proposal
from models.tables import Decision, Program, Proposal, Suggestion


def _suggested_program(session, proposal_id: int) -> Program:
    suggestion = session.exec(
        select(Suggestion).where(Suggestion.proposal_id == proposal_id).order_by(Suggestion.rank)
    ).first()
    return session.get(Program, suggestion.program_id)


def test_proposal_page_shows_suggestions_bars_and_marks(logged_in, submitted, session):
    html = logged_in.get(f"/review/proposals/{submitted.id}").data.decode()
    top = _suggested_program(session, submitted.id)
    assert top.name in html
    assert html.count('data-testid="suggestion"') >= 1
    assert re.search(r'class="bar"[^>]*><span class="w\d+"></span>', html)
    body = re.search(r'data-testid="proposal-body">(.*?)</div>', html, re.S).group(1)
    assert "<mark>" in body, "no shared term highlighted in the proposal"
    assert re.search(r'data-testid="program-purpose">.*?<mark>', html, re.S), "none in the program text"
    for button in (">採用</button>", ">見送り</button>", ">保留</button>"):
        assert button in html


def test_kanji_features_are_never_listed_or_marked(logged_in, submitted, session):
    # Issue 14: a person sees the proposal's words only; single-kanji features
    # (stored with kind "kanji") are neither listed nor marked.
    html = logged_in.get(f"/review/proposals/{submitted.id}").data.decode()
    stored = [t for s in session.exec(select(Suggestion).where(Suggestion.proposal_id == submitted.id)) for t in s.terms]
    assert stored
    assert 'data-testid="kanji-terms"' not in html and "共通する漢字" not in html and "字:" not in html
    kanji = {t[0] for t in stored if len(t) > 3 and t[3] == "kanji"}
    words = {t[0] for t in stored if not (len(t) > 3 and t[3] in ("kanji", "function"))}
    marked = set(re.findall(r"<mark[^>]*>([^<]+)</mark>", html))
    assert marked
    for feature in kanji - words:
        assert feature not in marked


def test_accept_changes_stage_history_and_export(logged_in, submitted, session):
    program = _suggested_program(session, submitted.id)
    response = logged_in.post(
        f"/review/proposals/{submitted.id}/decisions",
        data={"program_id": str(program.id), "verdict": "accepted", "note": "担当課と調整済み"},
    )
    assert response.status_code == 303
    html = logged_in.get(f"/review/proposals/{submitted.id}").data.decode()
    assert 'data-testid="proposal-stage">確認中' in html
    assert html.count('data-testid="history-row"') == 1 and "担当課と調整済み" in html
    exported = logged_in.get("/export/pairings.csv")
    assert exported.data.startswith(b"\xef\xbb\xbf")
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert [(r["受付番号"], r["事業名"], r["判断"], r["メモ"]) for r in rows] == [
        (submitted.receipt_number, program.name, "採用", "担当課と調整済み")
    ]
    as_json = logged_in.get("/export/pairings.json").json["pairings"]
    assert as_json[0]["verdict"] == "accepted" and as_json[0]["program_id"] == program.id


def test_undo_appends_and_restores(logged_in, submitted, session):
    program = _suggested_program(session, submitted.id)
    url = f"/review/proposals/{submitted.id}"
    logged_in.post(url + "/decisions", data={"program_id": str(program.id), "verdict": "rejected"})
    logged_in.post(url + "/decisions", data={"program_id": str(program.id), "verdict": "accepted"})
    logged_in.post(url + "/undo")
    rows = session.exec(select(Decision).where(Decision.proposal_id == submitted.id).order_by(Decision.id)).all()
    assert [d.verdict for d in rows] == ["rejected", "accepted", "rejected"]
    assert session.get(Proposal, submitted.id).stage == "checking"
    audit = logged_in.get("/audit?action=decision.undo").data.decode()
    assert audit.count('data-testid="audit-row"') == 1 and "coord" in audit


def test_undo_of_a_first_decision_leaves_the_pair_undecided(logged_in, submitted, session, auth_headers):
    program = _suggested_program(session, submitted.id)
    url = f"/review/proposals/{submitted.id}"
    logged_in.post(url + "/decisions", data={"program_id": str(program.id), "verdict": "accepted"})
    assert session.get(Proposal, submitted.id).stage == "checking"
    logged_in.post(url + "/undo")
    rows = session.exec(select(Decision).where(Decision.proposal_id == submitted.id).order_by(Decision.id)).all()
    assert [d.verdict for d in rows] == ["accepted", "withdrawn"]
    session.expire_all()
    page = logged_in.get(url).data.decode()
    assert 'data-testid="current-verdict"' not in page  # no badge: undecided
    assert "取り消し" in page  # the history says what happened
    api = logged_in.get(f"/api/v1/proposals/{submitted.id}/suggestions", headers=auth_headers).json
    assert all(item["decision"] is None for item in api["items"])
    history = logged_in.get(f"/api/v1/proposals/{submitted.id}/decisions", headers=auth_headers).json
    assert [d["verdict"] for d in history["items"]] == ["accepted", "withdrawn"]


def test_undo_without_decisions_says_so(logged_in, submitted):
    response = logged_in.post(f"/review/proposals/{submitted.id}/undo", follow_redirects=True)
    assert "取り消す判断がありません" in response.data.decode()


@pytest.mark.parametrize(
    "data",
    [{"program_id": "1", "verdict": "maybe"}, {"program_id": "abc", "verdict": "accepted"}, {"verdict": "accepted"}],
)
def test_bad_decisions_are_refused(logged_in, submitted, session, data):
    response = logged_in.post(f"/review/proposals/{submitted.id}/decisions", data=data, follow_redirects=True)
    assert "判断を記録できませんでした" in response.data.decode()
    assert session.exec(select(Decision)).first() is None


def test_decision_on_unknown_program_or_proposal_is_404(logged_in, submitted):
    assert logged_in.post(f"/review/proposals/{submitted.id}/decisions",
                          data={"program_id": "99999", "verdict": "accepted"}).status_code == 404
    assert logged_in.post("/review/proposals/99999/decisions",
                          data={"program_id": "1", "verdict": "accepted"}).status_code == 404
    assert logged_in.get("/review/proposals/99999").status_code == 404


def test_hand_pairing_with_the_picker(logged_in, submitted, session):
    program = session.exec(select(Program).where(Program.name.contains("保険制度"))).first()
    page = logged_in.get(f"/review/proposals/{submitted.id}?pick=保険制度").data.decode()
    assert program.name in page and "この事業と組み合わせる" in page
    response = logged_in.post(f"/review/proposals/{submitted.id}/pair", data={"program_id": str(program.id)})
    assert response.status_code == 303
    decision = session.exec(select(Decision)).one()
    assert (decision.program_id, decision.verdict) == (program.id, "accepted")
    bad = logged_in.post(f"/review/proposals/{submitted.id}/pair", data={"program_id": "424242"})
    assert bad.status_code == 400 and "その事業IDの事業はありません" in bad.data.decode()


def test_stage_change_is_internal(logged_in, submitted, session, client):
    logged_in.post(f"/review/proposals/{submitted.id}/stage", data={"stage": "not_adopted"})
    assert session.get(Proposal, submitted.id).stage == "not_adopted"
    bad = logged_in.post(f"/review/proposals/{submitted.id}/stage", data={"stage": "won"}, follow_redirects=True)
    assert "段階を変更できませんでした" in bad.data.decode()
    # The NPO sees no stage before an answer is published.
    logged_in.post("/logout")
    assert 'data-testid="status">受付<' in client.get(submitted.status_path).data.decode()


def test_queue_lists_filters_and_paginates(logged_in, submit, session, app):
    first = submit(title="公園清掃の提案")
    second = submit(title="防災訓練の提案", body="地域の防災訓練と避難所の運営について学ぶ講座を開きます。")
    html = logged_in.get("/review").data.decode()
    assert html.count('data-testid="queue-row"') == 2
    assert f'href="/review/proposals/{first.id}">公園清掃の提案</a>' in html
    # 判断済み: every suggestion of the proposal has a decision (one is not enough).
    logged_in.post(f"/review/proposals/{first.id}/decisions", data={"program_id": "1", "verdict": "deferred"})
    assert "公園清掃の提案" not in logged_in.get("/review?reviewed=yes").data.decode()
    for suggestion in suggestions_for_proposal(session=session, proposal_id=first.id):
        logged_in.post(f"/review/proposals/{first.id}/decisions",
                       data={"program_id": str(suggestion.program_id), "verdict": "rejected"})
    reviewed = logged_in.get("/review?reviewed=yes").data.decode()
    assert "公園清掃の提案" in reviewed and "防災訓練の提案" not in reviewed
    unreviewed = logged_in.get("/review?reviewed=no&sort=title").data.decode()
    assert "防災訓練の提案" in unreviewed and "公園清掃の提案" not in unreviewed
    assert "公園清掃の提案" in logged_in.get("/review?stage=checking").data.decode()
    assert logged_in.get("/review?min_score=0.99").data.decode().count('data-testid="queue-row"') == 0
    assert logged_in.get("/review?new=1").data.decode().count('data-testid="queue-row"') == 2
    app.config["PAGE_SIZE"] = 1
    page2 = logged_in.get("/review?page=2&sort=oldest").data.decode()
    assert page2.count('data-testid="queue-row"') == 1 and "防災訓練の提案" in page2 and "2 / 2" in page2
    department = session.get(Program, _suggested_program(session, second.id).id).department.split()[0]
    assert "防災訓練の提案" in logged_in.get(f"/review?department={department}").data.decode()


@pytest.mark.parametrize("query", ["min_score=abc", "max_score=7", "stage=nope", "sort=random"])
def test_queue_bad_filters_are_400_with_a_message(logged_in, query):
    response = logged_in.get(f"/review?{query}")
    assert response.status_code == 400 and 'class="flash flash-error"' in response.data.decode()


def test_dashboard_counts(logged_in, submit, session):
    done = submit()
    submit(title="二件目")
    for suggestion in suggestions_for_proposal(session=session, proposal_id=done.id):
        logged_in.post(f"/review/proposals/{done.id}/decisions",
                       data={"program_id": str(suggestion.program_id), "verdict": "accepted"})
    html = logged_in.get("/dashboard").data.decode()
    # The dashboard's 未判断 count is the queue's (models.queue.reviewed_condition).
    queue = logged_in.get("/review?reviewed=no").data.decode()
    assert queue.count('data-testid="queue-row"') == 1 and "二件目" in queue
    # An accepted pair is triage, not a 協働事業: nothing counts toward the target yet.
    assert re.search(r'data-testid="projects-launched">0<', html)
    assert re.search(r'data-testid="awaiting">1<', html)
    assert "目標 15 件" in html and "まだ再マッチは実行されていません" in html


def test_programs_program_and_department_pages(logged_in, submitted, session):
    program = _suggested_program(session, submitted.id)
    catalogue = logged_in.get("/programs?q=保険").data.decode()
    assert "市民活動総合保険制度" in catalogue and catalogue.count('data-testid="program-row"') >= 1
    page = logged_in.get(f"/programs/{program.id}").data.decode()
    assert program.name in page and "公園の清掃と子どもの環境学習" in page
    department = program.department.split()[0]
    dept_page = logged_in.get(f"/departments/{department}").data.decode()
    assert department in dept_page and "公園の清掃と子どもの環境学習" in dept_page
    assert logged_in.get("/departments/存在しない課").status_code == 404
    assert logged_in.get("/programs/99999").status_code == 404


def test_program_keywords_are_edited_on_the_program_page(logged_in, session, client):
    program = session.exec(select(Program).where(Program.external_id == "H20-02")).one()
    page = logged_in.get(f"/programs/{program.id}").data.decode()
    assert "キーワード（言い換え）" in page and 'name="keywords"' in page
    saved = logged_in.post(f"/programs/{program.id}", data={"keywords": "  シビックプライド\r\n\r\n地元愛 "}, follow_redirects=True)
    html = saved.data.decode()
    assert saved.status_code == 200 and "キーワードを保存しました" in html
    session.expire_all()
    assert session.get(Program, program.id).keywords == "シビックプライド\n地元愛"
    too_long = logged_in.post(f"/programs/{program.id}", data={"keywords": "あ" * 2001})
    assert too_long.status_code == 400
    assert 'id="keywords-error"' in too_long.data.decode() and "2000文字以内" in too_long.data.decode()
    session.expire_all()
    assert session.get(Program, program.id).keywords == "シビックプライド\n地元愛"
    audit = logged_in.get("/audit").data.decode()
    assert "programs.keywords" in audit
    catalogue = logged_in.get("/programs?q=シビックプライド").data.decode()
    assert catalogue.count('data-testid="program-row"') == 1 and "設定済み" in catalogue
    assert re.search(r'data-testid="without-keywords">[^<]*：29件', catalogue)


def test_a_shared_keyword_is_marked_in_the_programs_keywords(logged_in, submit, session):
    from office.catalogue import set_program_keywords as set_keywords

    program = session.exec(select(Program).where(Program.external_id == "H20-02")).one()
    set_keywords(session=session, program=program, keywords="ストリートピアノ、音楽の力")
    # Written for testing: words of the keywords, none of the program's own text.
    sent = submit(title="駅前にピアノを", body="駅前の広場にストリートピアノを置き、だれでも弾ける場所にしたいと考えています。")
    html = logged_in.get(f"/review/proposals/{sent.id}").data.decode()
    top = _suggested_program(session, sent.id)
    assert top.id == program.id
    assert re.search(r'data-testid="program-keywords"><mark>ストリートピアノ</mark>、音楽の力<', html), html


def test_program_keywords_need_a_login(client, session):
    program = session.exec(select(Program).where(Program.external_id == "H20-02")).one()
    response = client.post(f"/programs/{program.id}", data={"keywords": "x"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    session.expire_all()
    assert session.get(Program, program.id).keywords == ""


def test_pages_answer_on_an_empty_database(logged_in):
    for path in ("/dashboard", "/review", "/programs", "/audit", "/export/pairings.csv", "/export/pairings.json"):
        assert logged_in.get(path).status_code == 200, path


def _queries(app, client, path: str) -> int:
    from sqlalchemy import event

    from web.db import get_engine

    engine = get_engine(app)
    seen: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_queue_and_proposal_page_use_a_fixed_number_of_queries(app, logged_in, submit):
    first = submit()
    logged_in.post(f"/review/proposals/{first.id}/decisions", data={"program_id": "1", "verdict": "accepted"})
    few = _queries(app, logged_in, "/review")
    page_few = _queries(app, logged_in, f"/review/proposals/{first.id}")
    for n in range(4):
        done = submit(title=f"提案{n}")
        logged_in.post(f"/review/proposals/{done.id}/decisions", data={"program_id": str(n + 2), "verdict": "deferred"})
    logged_in.post(f"/review/proposals/{first.id}/decisions", data={"program_id": "3", "verdict": "rejected"})
    assert _queries(app, logged_in, "/review") == few
    assert _queries(app, logged_in, f"/review/proposals/{first.id}") == page_few


# Written for testing: a topic no program of the bundled catalogue covers.
OFF_TOPIC = {
    "title": "公園にドッグランを",
    "body": "愛犬家の会です。河川敷の公園の一角に、犬が綱を外して走れるドッグランを設け、飼い主のマナー教室も開きたい。",
}


def test_off_topic_proposal_is_flagged_unlikely_match(logged_in, submit, auth_headers):
    on_topic = submit()
    off_topic = submit(**OFF_TOPIC)
    page = logged_in.get(f"/review/proposals/{off_topic.id}").data.decode()
    assert 'data-testid="no-match"' in page and "該当なしの可能性" in page
    assert 'data-testid="no-match"' not in logged_in.get(f"/review/proposals/{on_topic.id}").data.decode()
    queue = logged_in.get("/review").data.decode()
    assert queue.count('data-testid="no-match"') == 1
    api = logged_in.get(f"/api/v1/proposals/{off_topic.id}/suggestions", headers=auth_headers).json
    assert api["no_match"] is True
    api = logged_in.get(f"/api/v1/proposals/{on_topic.id}/suggestions", headers=auth_headers).json
    assert api["no_match"] is False


def test_queue_filters_and_sorts_by_confidence(logged_in, submit, auth_headers):
    on_topic = submit(title="防災訓練の提案", body="地域の防災訓練と避難所の運営について学ぶ講座を開きます。")
    off_topic = submit(**OFF_TOPIC)
    levels = {p.id: logged_in.get(f"/api/v1/proposals/{p.id}/suggestions", headers=auth_headers).json
              for p in (on_topic, off_topic)}
    assert levels[off_topic.id]["confidence"] == "low" and levels[off_topic.id]["no_match"] is True
    assert levels[on_topic.id]["confidence"] in {"high", "medium"}
    low = logged_in.get("/review?confidence=low").data.decode()
    assert "公園にドッグランを" in low and "防災訓練の提案" not in low
    assert 'data-confidence="low"' in low
    level = levels[on_topic.id]["confidence"]
    same = logged_in.get(f"/review?confidence={level}").data.decode()
    assert "防災訓練の提案" in same and "公園にドッグランを" not in same
    ordered = logged_in.get("/review?sort=confidence").data.decode()
    assert ordered.index("防災訓練の提案") < ordered.index("公園にドッグランを")
    page = logged_in.get(f"/review/proposals/{on_topic.id}").data.decode()
    assert f'data-testid="confidence-note" data-confidence="{level}"' in page
    assert logged_in.get("/review?confidence=sure").status_code == 400
