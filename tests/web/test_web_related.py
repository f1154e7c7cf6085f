"""Related and duplicate proposals on the pages and the API, on SQLite and
PostgreSQL: the list with its shared terms, the 重複の可能性 flag on both pages
and in the queue, merging and undoing it from the proposal page, the merged
proposal's status page, 重複ではない and its undo, 404s and no 500 from bad input."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from models.tables import AuditEvent, MailMessage, Proposal

# Test data: the public form's fields (webdata.PROPOSAL) retyped by the same
# group, and a proposal of another group on another subject.
RETYPED = {"title": "公園の清掃と子どもたちの環境学習",
           "body": "地域の公園で清掃活動を行い、子どもたちと一緒に、ごみの分別やリサイクルについて学ぶ環境学習の講座を開きます。"}
OTHER = {"organization": "防災の輪", "email": "bousai@example.jp", "title": "地域の防災講座",
         "body": "自治会と一緒に地域の防災講座と避難訓練を開き、高齢者の防災意識を高めたい。"}


@pytest.fixture
def three(submit):
    """The form's proposal, the same retyped (same group), and another group's."""
    return submit(), submit(**RETYPED), submit(**OTHER)


def page(client, proposal_id: int) -> str:
    response = client.get(f"/review/proposals/{proposal_id}")
    assert response.status_code == 200
    return response.data.decode()


def test_the_proposal_page_lists_related_proposals_with_shared_terms(logged_in, three):
    first, retyped, other = three
    html = page(logged_in, first.id)
    items = re.findall(r'data-testid="related-item" data-proposal-id="(\d+)"', html)
    assert items[0] == str(retyped.id) and str(other.id) in items  # any other proposal, best first
    assert "似ている提案" in html and re.search(r'共通する語：.*<mark>公園</mark>', html)
    assert 'data-testid="related-semantic"' not in html  # lexical mode: no e5 likeness shown


def test_a_likely_duplicate_is_flagged_on_both_pages_and_in_the_queue(logged_in, three):
    first, retyped, other = three
    for mine, theirs in ((first, retyped), (retyped, first)):
        html = page(logged_in, mine.id)
        assert re.findall(r'data-testid="duplicate" data-proposal-id="(\d+)"', html) == [str(theirs.id)]
        assert "重複ではない" in html and "に統合する" in html
    assert 'data-testid="duplicate"' not in page(logged_in, other.id)
    queue = logged_in.get("/review").data.decode()
    assert queue.count('data-testid="duplicate-badge"') == 2


def test_merging_from_the_page_closes_it_tells_the_npo_and_can_be_undone(app, client, logged_in, session, three):
    first, retyped, _ = three
    response = logged_in.post(f"/review/proposals/{retyped.id}/merge", data={"into_id": str(first.id)})
    assert response.status_code == 303
    html = page(logged_in, retyped.id)
    assert 'data-testid="merged-into"' in html and first.receipt_number in html and "統合を取り消す" in html
    assert 'data-testid="merged-from"' in page(logged_in, first.id)
    assert 'data-testid="duplicate"' not in page(logged_in, first.id)  # the flag is off once merged
    status = client.get(retyped.status_path).data.decode()
    assert 'data-testid="merged-notice"' in status and first.receipt_number in status
    assert first.status_path not in status  # where it went: the receipt number, not the other's private link
    assert f'action="{retyped.status_path}/withdraw"' not in status  # nothing left to withdraw there
    session.expire_all()
    [mail] = session.exec(select(MailMessage).where(MailMessage.kind == "merged")).all()
    assert mail.proposal_id == retyped.id and mail.to_address == "hanako@example.jp"

    assert logged_in.post(f"/review/proposals/{retyped.id}/unmerge").status_code == 303
    session.expire_all()
    assert session.get(Proposal, retyped.id).merged_into_id is None
    [back] = session.exec(select(MailMessage).where(MailMessage.kind == "unmerged")).all()
    assert back.proposal_id == retyped.id and back.to_address == "hanako@example.jp"
    assert 'data-testid="merged-notice"' not in client.get(retyped.status_path).data.decode()
    actions = [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[-2:] == ["proposal.merge", "proposal.unmerge"]
    audit = logged_in.get("/audit").data.decode()
    assert "』</a>を<a" in audit and "』</a>に統合" in audit and "への統合を取り消し" in audit


def test_not_a_duplicate_from_the_page_turns_the_flag_off(logged_in, session, three):
    first, retyped, _ = three
    response = logged_in.post(f"/review/proposals/{first.id}/not-duplicate", data={"other_id": str(retyped.id)})
    assert response.status_code == 303
    assert 'data-testid="duplicate"' not in page(logged_in, first.id)
    assert 'data-testid="duplicate"' not in page(logged_in, retyped.id)
    assert 'data-testid="duplicate-badge"' not in logged_in.get("/review").data.decode()


def test_not_a_duplicate_can_be_withdrawn_beside_its_mark(logged_in, session, three):
    first, retyped, other = three
    logged_in.post(f"/review/proposals/{first.id}/not-duplicate", data={"other_id": str(retyped.id)})
    for mine, theirs in ((first, retyped), (retyped, first)):  # the mark shows on both pages, with its button
        html = page(logged_in, mine.id)
        assert re.findall(r'data-testid="not-duplicate-mark" data-proposal-id="(\d+)"', html) == [str(theirs.id)]
        assert 'data-testid="undo-not-duplicate"' in html
    assert 'data-testid="not-duplicates"' not in page(logged_in, other.id)
    response = logged_in.post(f"/review/proposals/{retyped.id}/not-duplicate/undo", data={"other_id": str(first.id)})
    assert response.status_code == 303
    html = page(logged_in, first.id)
    assert 'data-testid="not-duplicate-mark"' not in html
    assert re.findall(r'data-testid="duplicate" data-proposal-id="(\d+)"', html) == [str(retyped.id)]  # flagged again
    assert logged_in.get("/review").data.decode().count('data-testid="duplicate-badge"') == 2
    again = logged_in.post(f"/review/proposals/{retyped.id}/not-duplicate/undo", data={"other_id": str(first.id)},
                           follow_redirects=True)
    assert "「重複ではない」の記録はありません" in again.data.decode()
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "proposal.not_duplicate_undo")).all()
    assert len(events) == 1
    audit = logged_in.get("/audit").data.decode()
    assert "は重複ではないとの確認を取り消し" in audit


@pytest.mark.parametrize("route", ["merge", "unmerge", "not-duplicate", "not-duplicate/undo"])
def test_unknown_proposals_are_404_and_bad_ids_are_no_500(logged_in, session, three, route):
    first = three[0]
    assert logged_in.post(f"/review/proposals/999999/{route}", data={"into_id": "1", "other_id": "1"}).status_code == 404
    assert logged_in.post(f"/review/proposals/99999999999/{route}").status_code == 404
    for bad in ("", "abc", "-1", "1" * 40, "１", "0", "999999", str(first.id)):
        response = logged_in.post(f"/review/proposals/{first.id}/{route}", data={"into_id": bad, "other_id": bad})
        assert response.status_code == 303, (bad, response.status_code)
    session.expire_all()
    assert session.get(Proposal, first.id).merged_into_id is None


def test_the_routes_need_a_login(client, three):
    response = client.post(f"/review/proposals/{three[0].id}/merge", data={"into_id": str(three[1].id)})
    assert response.status_code in (302, 401)


def test_the_api_lists_related_proposals(client, auth_headers, three):
    first, retyped, other = three
    response = client.get(f"/api/v1/proposals/{first.id}/related", headers=auth_headers)
    assert response.status_code == 200
    data = response.get_json()
    assert data["proposal_id"] == first.id and data["merged_into_id"] is None
    top = data["items"][0]
    assert top["proposal_id"] == retyped.id and top["receipt_number"] == retyped.receipt_number
    assert top["likely_duplicate"] is True and top["semantic_score"] is None and "公園" in top["terms"]
    assert top["stage_label"] == "受付" and 0 < top["lexical_score"] <= 1 and top["rank"] == 1
    assert any(item["proposal_id"] == other.id and not item["likely_duplicate"] for item in data["items"])


def test_the_api_answers_404_and_401(client, auth_headers, three):
    assert client.get("/api/v1/proposals/999999/related", headers=auth_headers).status_code == 404
    assert client.get("/api/v1/proposals/99999999999/related", headers=auth_headers).status_code == 404
    assert client.get(f"/api/v1/proposals/{three[0].id}/related").status_code == 401
