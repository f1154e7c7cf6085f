"""Themes on the console: the dashboard's card sorted by organisations, a
theme's page, rename / split / join and their undo, a joint 協働事業 of several proposals
(counted once, shown on each NPO's status page once its answer is
published); bad input is a 400 with a Japanese message or a 404, never a 500.
On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest
from sqlmodel import select
from test_theme_edits import COORDINATOR, add_theme_proposals, run, theme_at

from corpus.programs import split_departments
from models.suggestions import suggestions_for
from models.tables import AuditEvent, Program, Proposal, ProposalCreate
from models.theme_tables import ProjectProposal, Theme
from models.workflow_tables import AnswerCreate, Project
from office import commands
from office.answers import publish_answers, save_answer
from office.intake import receive_proposal

SAFETY_MORE = [  # two more 防災 proposals of 東町自治会: a bigger theme of fewer groups
    ("防災講座と避難訓練", "自治会で防災講座を開き、避難訓練で高齢者の防災意識を高めたい。"),
    ("避難訓練の講座", "地域の避難訓練と防災講座を続け、高齢者と防災の備えを高めたい。"),
]


@pytest.fixture
def grouped(app, session):
    proposals = add_theme_proposals(session)
    tokens = {}
    for title, body in SAFETY_MORE:
        proposal, token = receive_proposal(session=session, proposal_in=ProposalCreate(
            title=title, body=body, organization="東町自治会", email="higashi@example.jp"))
        proposals.append(proposal)
        tokens[proposal.id] = token
    run(app)
    return proposals


def safety_members(grouped):
    return [grouped[3], grouped[4], grouped[8], grouped[9]]


def _theme_links(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-testid="theme-row"><a href="/themes/(\d+)"', html)]


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_the_dashboard_sorts_themes_by_organisations(logged_in, session, grouped):
    kids, safety = theme_at(session, grouped[0]), theme_at(session, grouped[3])
    html = logged_in.get("/dashboard").data.decode()
    # 防災 has four proposals of two groups, 子ども食堂 three of three: 子ども食堂 first.
    assert _theme_links(html) == [kids.id, safety.id]
    assert "子ども・食堂・ネットワーク</a>：<span data-testid=\"theme-organisations\">3</span>団体・提案 3件" in html
    assert "提案が一つだけのテーマ：3件" in html


def test_the_theme_page_lists_proposals_organisations_and_shared_programs(logged_in, session, grouped):
    safety = theme_at(session, grouped[3])
    response = logged_in.get(f"/themes/{safety.id}")
    assert response.status_code == 200
    html = response.data.decode()
    assert html.count('data-testid="theme-proposal"') == 4
    assert "2団体（東町自治会、西町防災会）" in _text(html)
    programs = re.search(r'data-testid="theme-programs">(.*?)</dd>', html, re.S).group(1)
    departments = re.search(r'data-testid="theme-departments">(.*?)</dd>', html, re.S).group(1)
    # The programs in the first three published suggestions of more than half of them (3 of 4).
    counts = Counter(s.program_id for rows in suggestions_for(session=session, proposal_ids=[p.id for p in safety_members(
        grouped)]).values() for s in rows[:3])
    expected = {pid for pid, n in counts.items() if n >= 3}
    assert expected and {int(n) for n in re.findall(r'href="/programs/(\d+)"', programs)} == expected
    for pid in expected:
        for name in split_departments(session.get(Program, pid).department):
            assert name in departments
    assert logged_in.get("/themes/999999").status_code == 404
    assert logged_in.get("/themes/99999999999").status_code == 404


def test_rename_split_and_join_from_the_page(logged_in, session, grouped):
    kids, safety = theme_at(session, grouped[0]), theme_at(session, grouped[3])
    safety_id = safety.id
    response = logged_in.post(f"/themes/{kids.id}/rename", data={"label": "子ども食堂ネットワーク"})
    assert response.status_code == 303
    response = logged_in.post(f"/themes/{kids.id}/split", data={"proposal_id": [str(grouped[2].id)], "new_label": ""})
    assert response.status_code == 303
    new_id = int(response.headers["Location"].rsplit("/", 1)[1])
    session.expire_all()
    assert theme_at(session, grouped[2]).id == new_id and theme_at(session, grouped[0]).label == "子ども食堂ネットワーク"
    assert logged_in.post(f"/themes/{kids.id}/join", data={"other": str(safety_id)}).status_code == 303
    session.expire_all()
    assert session.get(Theme, safety_id) is None and theme_at(session, grouped[4]).id == kids.id
    actions = [e.action for e in session.exec(select(AuditEvent).where(AuditEvent.entity == "theme"))]
    assert actions == ["theme.rename", "theme.split", "theme.join"]
    page = logged_in.get("/audit").data.decode()
    assert "テーマの分割" in page and "テーマの統合" in page


def test_undo_from_the_page_steps_back_one_edit_at_a_time(logged_in, session, grouped):
    kids = theme_at(session, grouped[0])
    assert 'data-testid="theme-undo"' not in logged_in.get(f"/themes/{kids.id}").data.decode()  # nothing to undo
    logged_in.post(f"/themes/{kids.id}/rename", data={"label": "子ども食堂ネットワーク"})
    response = logged_in.post(f"/themes/{kids.id}/split", data={"proposal_id": [str(grouped[2].id)], "new_label": "居場所"})
    new_id = int(response.headers["Location"].rsplit("/", 1)[1])
    html = logged_in.get(f"/themes/{kids.id}").data.decode()
    what = re.search(r'data-testid="theme-undo-what">(.*?)</span>', html).group(1)
    assert what == "テーマの分割（1件を「居場所」に分けたこと）" and 'data-testid="theme-undo-button"' in html
    split_event = re.search(r'name="event_id" value="(\d+)"', html).group(1)
    response = logged_in.post(f"/themes/{kids.id}/undo", data={"event_id": split_event})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/themes/{kids.id}")
    session.expire_all()
    assert session.get(Theme, new_id) is None and theme_at(session, grouped[2]).id == kids.id
    # The same page posted again is stale: the rename is the newest edit now.
    stale = logged_in.post(f"/themes/{kids.id}/undo", data={"event_id": split_event})
    assert stale.status_code == 409 and "読み込み直して" in stale.data.decode()
    html = logged_in.get(f"/themes/{kids.id}").data.decode()
    assert "テーマ名の変更（「子ども・食堂・ネットワーク」→「子ども食堂ネットワーク」）" in html
    assert logged_in.post(f"/themes/{kids.id}/undo", data={}).status_code == 303
    session.expire_all()
    assert theme_at(session, grouped[0]).label == "子ども・食堂・ネットワーク"
    empty = logged_in.post(f"/themes/{kids.id}/undo", data={})
    assert empty.status_code == 409 and "取り消せる編集はありません。" in empty.data.decode()
    audit = _text(logged_in.get("/audit").data.decode())
    assert "がテーマ「子ども食堂ネットワーク」の編集（テーマの分割）を取り消し" in audit
    assert "がテーマ「子ども・食堂・ネットワーク」の編集（テーマ名の変更）を取り消し" in audit
    assert "がテーマ名を「子ども・食堂・ネットワーク」から「子ども食堂ネットワーク」に変更" in audit
    assert logged_in.post("/themes/999999/undo", data={}).status_code == 404


@pytest.mark.parametrize(("path", "data", "message"), [
    ("rename", {"label": ""}, "テーマ名を入力してください。"),
    ("rename", {"label": "あ" * 101}, "テーマ名は100文字以内で入力してください。"),
    ("split", {"proposal_id": ["abc"]}, "提案の指定が正しくありません。"),
    ("split", {}, "新しいテーマに分ける提案を選んでください。"),
    ("split", {"proposal_id": ["999999"]}, "このテーマにない提案が選ばれています。"),
    ("join", {"other": "x1"}, "統合するテーマが見つかりません。"),
    ("join", {"other": ""}, "統合するテーマを選んでください。"),
    ("project", {"name": "連携事業", "proposal_id": ["1"]}, "提案を二つ以上選んでください。"),
    ("project", {"name": "", "proposal_id": ["1", "2"]}, "協働事業名を入力してください。"),
    ("project", {"name": "連携", "proposal_id": ["1", "99999999999"]}, "提案の指定が正しくありません。"),
    ("project", {"name": "連携", "proposal_id": ["1", "999999"], "collaboration_type": "other"},
     "提案の指定が正しくありません。"),
])
def test_bad_input_is_a_400_in_japanese(logged_in, session, grouped, path, data, message):
    kids = theme_at(session, grouped[0])
    before = session.exec(select(AuditEvent)).all()
    response = logged_in.post(f"/themes/{kids.id}/{path}", data={"collaboration_type": "other", "departments": "", **data})
    html = response.data.decode()
    assert response.status_code == 400
    assert message in html, re.findall(r'class="(?:card )?error"[^>]*>(.*?)</', html, re.S)
    session.expire_all()
    assert session.exec(select(AuditEvent)).all() == before
    assert logged_in.post(f"/themes/999999/{path}", data=data).status_code == 404


def test_join_into_itself_is_refused(logged_in, session, grouped):
    kids = theme_at(session, grouped[0])
    response = logged_in.post(f"/themes/{kids.id}/join", data={"other": str(kids.id)})
    assert response.status_code == 400 and "同じテーマは統合できません。" in response.data.decode()


def _propose(client, theme_id: int, proposals, **fields):
    data = {"name": "子ども食堂ネットワーク事業", "departments": "児童青少年課", "collaboration_type": "commission",
            "proposal_id": [str(p.id) for p in proposals], **fields}
    return client.post(f"/themes/{theme_id}/project", data=data)


def test_a_joint_project_links_proposals_and_counts_once(logged_in, session, grouped):
    kids = theme_at(session, grouped[0])
    members = grouped[:3]
    response = _propose(logged_in, kids.id, members, agreement_date="2009-06-01")
    assert response.status_code == 303
    session.expire_all()
    project = session.exec(select(Project)).one()
    assert project.proposal_id == members[0].id and project.agreement_date == date(2009, 6, 1)
    links = session.exec(select(ProjectProposal.proposal_id).where(ProjectProposal.project_id == project.id)).all()
    assert sorted(links) == sorted(p.id for p in members)
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "project.joint")).one()
    assert event.detail["lead_id"] == members[0].id
    page = logged_in.get(f"/review/proposals/{members[2].id}").data.decode()
    assert "子ども食堂ネットワーク事業" in page and page.count('data-testid="joint-project-proposal"') == 3
    dashboard = logged_in.get("/dashboard").data.decode()
    assert re.search(r'data-testid="projects-launched">1<', dashboard)
    assert dashboard.count('data-testid="project-row"') == 1
    # One of them already in a 協働事業: refused, nothing written.
    again = _propose(logged_in, kids.id, [members[2], grouped[3]])
    assert again.status_code == 400 and "すでに別の協働事業に含まれている" in again.data.decode()
    # Saving the 協働事業 from a member's page edits the joint one: still one project.
    commands.set_stage(session=session, proposal=session.get(Proposal, members[2].id), stage="adopted")
    saved = logged_in.post(f"/review/proposals/{members[2].id}/project", data={
        "name": "子ども食堂ネットワーク事業（改）", "departments": "児童青少年課", "collaboration_type": "commission",
        "agreement_date": "2009-06-01"})
    assert saved.status_code == 303
    session.expire_all()
    assert [(p.id, p.name) for p in session.exec(select(Project))] == [(project.id, "子ども食堂ネットワーク事業（改）")]
    assert re.search(r'data-testid="projects-launched">1<', logged_in.get("/dashboard").data.decode())


def test_each_status_page_shows_the_joint_project_once_its_answer_is_published(client, logged_in, session, app):
    made = []
    for title, body, organization in [
        ("子ども食堂のネットワーク", "地域の子ども食堂をつなぐネットワークをつくり、食材の共同調達を進めたい。", "NPO こども広場"),
        ("子ども食堂の連携", "市内の子ども食堂が連携して、食材の寄付を共有するネットワークをつくりたい。", "みんなの食卓の会"),
    ]:
        made.append(receive_proposal(session=session, proposal_in=ProposalCreate(
            title=title, body=body, organization=organization, email="npo@example.jp")))
    run(app)
    kids = theme_at(session, made[0][0])
    assert _propose(logged_in, kids.id, [p for p, _ in made]).status_code == 303
    first, second = made
    before = client.get(f"/status/{second[1]}").data.decode()
    assert 'data-testid="joint-project"' not in before and "児童青少年課" not in before
    session.expire_all()
    proposal = session.get(Proposal, second[0].id)
    save_answer(session=session, proposal=proposal, answer_in=AnswerCreate(
        stage="adopted", text="ほかの団体のご提案とあわせて協働事業として進めます。"), actor=COORDINATOR)
    publish_answers(session=session, proposals=[proposal], actor=COORDINATOR)
    shown = client.get(f"/status/{second[1]}").data.decode()
    assert 'data-testid="joint-project"' in shown and "子ども食堂ネットワーク事業" in shown
    partners = re.search(r'data-testid="joint-project-partners">(.*?)</dd>', shown, re.S).group(1)
    assert partners == "NPO こども広場"
    assert "npo@example.jp" not in shown
    # The other NPO, whose answer is not published yet, does not see it.
    assert 'data-testid="joint-project"' not in client.get(f"/status/{first[1]}").data.decode()
