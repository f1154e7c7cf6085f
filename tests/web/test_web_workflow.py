"""The collaboration workflow through the console, the department's link, the
NPO's status page and the API (SQLite and PostgreSQL): 所見照会, the answer
to the NPO, the 協働事業, and the outbox rows each step writes."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlmodel import select

from models.clock import utcnow
from models.tables import AuditEvent, Department, MailMessage, OpinionRequest, Proposal
from office.opinions import SALT


@pytest.fixture
def department(session) -> Department:
    """環境課 is named by the bundled catalogue; give it an address (test data)."""
    found = session.exec(select(Department).where(Department.name == "環境課")).one()
    found.emails = "kankyo@city.example.jp"
    session.add(found)
    session.commit()
    return found


def _ask(logged_in, proposal_id, **data):
    payload = {"departments": ["環境課"], "message": "公園の清掃について所見をお願いします。", **data}
    return logged_in.post(f"/review/proposals/{proposal_id}/opinion-requests", data=payload)


def _link(session, proposal_id) -> str:
    """The department's link, as its e-mail carries it (the outbox's secret)."""
    message = session.exec(select(MailMessage).where(MailMessage.kind == "opinion_request",
                                                     MailMessage.proposal_id == proposal_id)).one()
    return "/opinions/" + message.secret


def test_submission_queues_the_receipt_with_the_status_link(submitted, session):
    [receipt] = session.exec(select(MailMessage).where(MailMessage.proposal_id == submitted.id)).all()
    assert receipt.kind == "receipt" and receipt.to_address == "hanako@example.jp"
    assert submitted.status_path == "/status/" + receipt.secret
    assert receipt.context["receipt_number"] == submitted.receipt_number


def test_asking_a_department_moves_the_stage_and_queues_its_mail(logged_in, submitted, department, session):
    response = _ask(logged_in, submitted.id)
    assert response.status_code == 303
    session.expire_all()
    [req] = session.exec(select(OpinionRequest)).all()
    assert req.department_id == department.id and req.status == "open"
    assert req.due == utcnow().date() + timedelta(days=14)
    assert session.get(Proposal, submitted.id).stage == "consulting"
    mail = session.exec(select(MailMessage).where(MailMessage.kind == "opinion_request")).one()
    assert mail.to_address == "kankyo@city.example.jp" and mail.opinion_request_id == req.id
    [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "opinion.request")).all()
    assert event.detail["departments"] == ["環境課"]
    page = logged_in.get(f"/review/proposals/{submitted.id}").data.decode()
    assert 'data-testid="opinion-row"' in page and "回答待ち" in page


@pytest.mark.parametrize(("data", "message"), [
    ({"departments": []}, "照会する担当課を1つ以上選んでください"),
    ({"departments": ["存在しない課"]}, "担当課「存在しない課」は登録されていないか"),
    ({"due": "2000-01-01"}, "今日以降の日付"),
    ({"message": "あ" * 4001}, "4000文字以内"),
])
def test_a_bad_request_form_is_refused_beside_the_field(logged_in, submitted, department, session, data, message):
    response = _ask(logged_in, submitted.id, **data)
    assert response.status_code == 400 and message in response.data.decode()
    assert session.exec(select(OpinionRequest)).first() is None
    assert session.get(Proposal, submitted.id).stage == "received"


def test_the_department_answers_once_without_an_account(client, logged_in, submitted, department, session):
    _ask(logged_in, submitted.id)
    link = _link(session, submitted.id)
    logged_in.post("/logout")
    page = client.get(link).data.decode()
    assert "公園の清掃と子どもの環境学習" in page and "hanako@example.jp" not in page and "03-1234-5678" not in page
    bad = client.post(link, data={"opinion": "", "budget_thousand_yen": "-5"})
    assert bad.status_code == 400 and "所見を選んでください" in bad.data.decode()
    done = client.post(link, data={"opinion": "conditional", "comment": "夏休み期間なら可能",
                                   "collaboration_type": "co_hosting", "budget_thousand_yen": "200",
                                   "timing": "令和9年度", "answerer": "環境課 鈴木"})
    assert done.status_code == 303
    shown = client.get(link)
    assert shown.status_code == 200 and 'data-testid="answered"' in shown.data.decode()
    again = client.post(link, data={"opinion": "difficult"})
    assert again.status_code == 409
    session.expire_all()
    req = session.exec(select(OpinionRequest)).one()
    assert (req.opinion, req.comment, req.budget_thousand_yen, req.status) == (
        "conditional", "夏休み期間なら可能", 200, "answered")


def test_tampered_expired_and_withdrawn_links_change_nothing(client, logged_in, submitted, department, session, app):
    _ask(logged_in, submitted.id)
    link = _link(session, submitted.id)
    tampered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert client.get(tampered).status_code == 404 and "正しくありません" in client.get(tampered).data.decode()
    assert client.post(tampered, data={"opinion": "feasible"}).status_code == 404
    req = session.exec(select(OpinionRequest)).one()
    # A token signed 31 days ago (itsdangerous reads its time from the token).
    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT, signer=_AgedSigner)
    expired = "/opinions/" + old.dumps([req.id, req.link_nonce])
    assert client.post(expired, data={"opinion": "feasible"}).status_code == 410
    assert "有効期限" in client.get(expired).data.decode()
    logged_in.post(f"/review/opinion-requests/{req.id}/withdraw")
    assert client.get(link).status_code == 410
    session.expire_all()
    assert session.exec(select(OpinionRequest)).one().opinion is None


class _AgedSigner(TimestampSigner):
    """Signs as if 31 days ago (one day past OPINION_LINK_DAYS)."""

    def get_timestamp(self) -> int:
        return int((utcnow() - timedelta(days=31)).timestamp())


def test_the_npo_sees_only_published_answers(client, logged_in, submitted, session):
    url = f"/review/proposals/{submitted.id}/answer"
    draft = logged_in.post(url, data={"stage": "negotiating", "text": "担当課と協議を始めます。", "action": "draft"})
    assert draft.status_code == 303
    assert 'data-testid="status">受付<' in client.get(submitted.status_path).data.decode()
    assert logged_in.post(url, data={"stage": "negotiating", "text": ""}).status_code == 400
    logged_in.post(url, data={"stage": "adopted", "text": "採択します。環境課が担当します。", "action": "publish"})
    session.expire_all()
    assert session.get(Proposal, submitted.id).stage == "adopted"
    logged_in.post("/logout")
    page = client.get(submitted.status_path).data.decode()
    assert 'data-testid="status">採択<' in page and "環境課が担当します" in page
    answer_mail = session.exec(select(MailMessage).where(MailMessage.kind == "answer")).one()
    assert answer_mail.context["stage_label"] == "採択" and answer_mail.to_address == "hanako@example.jp"


def test_bulk_publish_from_the_queue(logged_in, submit, session):
    first, second, third = submit(title="提案その一"), submit(title="提案その二"), submit(title="提案その三")
    for item in (first, second):
        logged_in.post(f"/review/proposals/{item.id}/answer",
                       data={"stage": "not_adopted", "text": "今回は見送ります。", "action": "draft"})
    queue = logged_in.get("/review").data.decode()
    assert queue.count('data-testid="publish-check"') == 2 and 'data-testid="publish-form"' in queue
    response = logged_in.post("/review/answers/publish",
                              data={"proposal_id": [str(first.id), str(second.id), str(third.id)]},
                              follow_redirects=True)
    assert "2件の回答を公開しました" in response.data.decode() and "下書きのない1件" in response.data.decode()
    session.expire_all()
    assert [session.get(Proposal, i.id).stage for i in (first, second, third)] == [
        "not_adopted", "not_adopted", "received"]
    assert len(session.exec(select(MailMessage).where(MailMessage.kind == "answer")).all()) == 2


def test_the_npo_withdraws_its_proposal(client, submitted, session):
    refused = client.post(submitted.status_path + "/withdraw", data={})
    assert refused.status_code == 400 and "チェックを入れてください" in refused.data.decode()
    assert client.post(submitted.status_path + "/withdraw", data={"confirm": "y"}).status_code == 303
    assert 'data-testid="status">取り下げ<' in client.get(submitted.status_path).data.decode()
    assert client.post(submitted.status_path + "/withdraw", data={"confirm": "y"}).status_code == 400


def test_an_adopted_proposal_records_one_project_counted_once(logged_in, submitted, session):
    url = f"/review/proposals/{submitted.id}"
    early = logged_in.post(url + "/project", data={"name": "公園環境学習", "collaboration_type": "co_hosting"})
    assert early.status_code == 400 and "採択" in early.data.decode()
    logged_in.post(url + "/stage", data={"stage": "adopted"})
    form = {"name": "公園環境学習", "departments": "環境課", "collaboration_type": "co_hosting",
            "agreement_date": "2009-06-01", "budget_thousand_yen": "300"}
    assert logged_in.post(url + "/project", data={**form, "period_start": "2009-07-01",
                                                  "period_end": "2009-06-01"}).status_code == 400
    assert logged_in.post(url + "/project", data=form).status_code == 303
    assert logged_in.post(url + "/project", data={**form, "name": "公園環境学習（改）"}).status_code == 303
    dashboard = logged_in.get("/dashboard").data.decode()
    assert re.search(r'data-testid="projects-launched">1<', dashboard)
    assert "公園環境学習（改）" in dashboard


def test_the_npo_sees_the_projects_department_once_the_answer_is_out(logged_in, submitted):
    url = f"/review/proposals/{submitted.id}"
    logged_in.post(url + "/stage", data={"stage": "adopted"})
    assert logged_in.post(url + "/project", data={"name": "公園環境学習", "departments": "環境課",
                                                  "collaboration_type": "co_hosting"}).status_code == 303
    # Recorded before any answer: the stage and the project are still the office's own.
    before = logged_in.get(submitted.status_path).data.decode()
    assert 'data-testid="department"' not in before and "環境課" not in before
    logged_in.post(url + "/answer", data={"stage": "adopted", "text": "採択します。環境課と進めます。", "action": "publish"})
    after = logged_in.get(submitted.status_path).data.decode()
    assert 'data-testid="department">環境課<' in after


def test_the_api_runs_the_same_workflow(client, submitted, department, session, auth_headers):
    base = f"/api/v1/proposals/{submitted.id}"
    created = client.post(base + "/opinion-requests", json={"department": "環境課", "message": "所見を"},
                          headers=auth_headers)
    assert created.status_code == 201 and created.json["status"] == "open"
    assert "link_nonce" not in created.json and "token" not in str(created.json)
    assert client.post(base + "/opinion-requests", json={"department": "無い課"},
                       headers=auth_headers).json["fields"] == {"department": ["unknown department"]}
    assert "due" in client.post(base + "/opinion-requests", json={"department": "環境課", "due": "soon"},
                                headers=auth_headers).json["fields"]
    token = _link(session, submitted.id).rsplit("/", 1)[1]
    assert client.post(f"/api/v1/opinions/{token}", json={"opinion": "maybe"}).status_code == 400
    assert client.post(f"/api/v1/opinions/{token}", json={"opinion": "feasible"}).status_code == 201
    assert client.post(f"/api/v1/opinions/{token}", json={"opinion": "feasible"}).status_code == 409
    assert client.post(f"/api/v1/opinions/{token[:-2]}xx", json={"opinion": "feasible"}).status_code == 404
    listed = client.get(base + "/opinion-requests", headers=auth_headers).json["items"]
    assert [r["opinion"] for r in listed] == ["feasible"]
    assert client.put(base + "/answer", json={"stage": "won", "text": "x"}, headers=auth_headers).status_code == 400
    assert client.post(base + "/answer/publish", headers=auth_headers).status_code == 409
    saved = client.put(base + "/answer", json={"stage": "negotiating", "text": "協議します"}, headers=auth_headers)
    assert saved.json["draft"]["stage"] == "negotiating" and saved.json["published"] is None
    published = client.post(base + "/answer/publish", headers=auth_headers).json
    assert published["draft"] is None and published["published"]["text"] == "協議します"
    shown = client.get(base, headers=auth_headers).json
    assert shown["stage"] == "negotiating" and shown["answer"]["published"]["stage"] == "negotiating"


def test_the_proposals_export_gives_stage_codes_and_labels(logged_in, submitted, session):
    logged_in.post(f"/review/proposals/{submitted.id}/answer",
                   data={"stage": "negotiating", "text": "=HYPERLINK(\"http://x\")", "action": "publish"})
    logged_in.post(f"/review/proposals/{submitted.id}/stage", data={"stage": "adopted"})
    exported = logged_in.get("/export/proposals.csv")
    assert exported.data.startswith(b"\xef\xbb\xbf")
    [row] = list(csv.DictReader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert (row["受付番号"], row["段階"], row["段階コード"], row["提案者に公開中の段階"]) == (
        submitted.receipt_number, "採択", "adopted", "協議中")
    [item] = logged_in.get("/export/proposals.json").json["proposals"]
    assert item["stage"] == "adopted" and item["published_stage"] == "negotiating"


def test_the_proposal_page_has_no_duplicate_ids(logged_in, submitted, session):
    # Several forms share the page: a duplicate id would tie a label to the wrong field.
    logged_in.post(f"/review/proposals/{submitted.id}/stage", data={"stage": "adopted"})
    page = logged_in.get(f"/review/proposals/{submitted.id}").data.decode()
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_an_overdue_request_is_listed_and_reminded_once(app, logged_in, submitted, department, session):
    from web.mail import send_now

    _ask(logged_in, submitted.id)
    session.expire_all()
    req = session.exec(select(OpinionRequest)).one()
    later = utcnow() + timedelta(days=15)  # one day past the default due date
    send_now(app, now=later)
    send_now(app, now=later + timedelta(hours=1))
    session.expire_all()
    reminders = session.exec(select(MailMessage).where(MailMessage.kind == "reminder")).all()
    assert len(reminders) == 1 and reminders[0].to_address == "kankyo@city.example.jp"
    assert reminders[0].status == "sent"  # no mail server set: written to instance/outbox/
    assert session.get(OpinionRequest, req.id).reminded_at is not None
    req.due = utcnow().date() - timedelta(days=1)  # past due, as seen by the dashboard today
    session.add(req)
    session.commit()
    dashboard = logged_in.get("/dashboard").data.decode()
    assert dashboard.count('data-testid="overdue-row"') == 1 and "督促メール送信済み" in dashboard


def test_a_failed_message_is_shown_on_the_dashboard(logged_in, submitted, session):
    receipt = session.exec(select(MailMessage).where(MailMessage.kind == "receipt")).one()
    receipt.status, receipt.attempts, receipt.last_error = "failed", 8, "Connection refused"
    session.add(receipt)
    session.commit()
    dashboard = logged_in.get("/dashboard").data.decode()
    assert re.search(r'data-testid="mail-failed">1<', dashboard) and "Connection refused" in dashboard


def test_the_departments_suggested_programs_are_attached(logged_in, submitted, session):
    from models.suggestions import suggestions_for_proposal
    from models.tables import Program

    programs = [session.get(Program, s.program_id) for s in suggestions_for_proposal(session=session,
                                                                                      proposal_id=submitted.id)]
    named = {p.id for p in programs if "市民協働課" in p.department.split()}
    assert named, "the fixture proposal should suggest a 市民協働課 program"
    _ask(logged_in, submitted.id, departments=["市民協働課"])
    session.expire_all()
    req = session.exec(select(OpinionRequest)).one()
    assert set(req.program_ids) == named
    # 市民協働課 has no e-mail yet: no message, and the page offers the link instead.
    assert session.exec(select(MailMessage).where(MailMessage.kind == "opinion_request")).first() is None
    page = logged_in.get(f"/review/proposals/{submitted.id}").data.decode()
    assert 'data-testid="opinion-link"' in page and "メールアドレスが未登録の担当課（市民協働課）" in page
