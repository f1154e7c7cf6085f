"""Related and duplicate proposals through the office's commands, on SQLite and
PostgreSQL: the nightly rematch stores the lists and the duplicate flag, online
matching updates them for a new proposal, a merge is one command with its event
and the NPO's e-mail (delivered over real SMTP, tests/mailserver.py), undone
by unmerge (the NPO told again by e-mail, once), and 重複ではない survives a
rematch until the coordinator withdraws it."""

from __future__ import annotations

import mailserver
import pytest
from sqlmodel import Session, col, select

from models.related import duplicates_of, related_for
from models.tables import (
    AuditEvent,
    MailMessage,
    NotDuplicate,
    Proposal,
    ProposalCreate,
    RelatedProposal,
)
from office.commands import Actor, StaleDecision
from office.intake import receive_proposal
from office.merging import (
    MergeRefused,
    mark_not_duplicate,
    merge_proposals,
    unmerge,
    withdraw_not_duplicate,
)
from web.cli import cli
from web.db import get_matching
from web.mail import send_now

smtp_server = mailserver.smtp_server

COORDINATOR = Actor(name="coord")
# Test data: one group's proposal, the same retyped with a few words changed,
# another project of the same group, and the first text from another group.
SCHOOL = ("放課後の学習支援教室", "放課後に小学生が安心して過ごせる学習支援の教室を公民館で開き、"
          "地域の大学生と退職した教員が宿題を見守りながら、子どもの居場所をつくりたいと考えています。")
RETYPED = ("放課後の学習支援教室の開催", "放課後に小学生が安心して過ごせる学習支援の教室を、公民館で開き、"
           "地域の大学生や退職した教員が宿題を見守りながら、子どもたちの居場所をつくりたいと考えています。")
OTHER_PROJECT = ("高齢者の見守り訪問", "一人暮らしの高齢者の家を定期的に訪問し、話し相手になりながら"
                 "困りごとを聞き取り、必要に応じて地域包括支援センターにつなぐ活動を続けたい。")
PARK = ("公園の花壇づくり", "駅前の公園に季節の花を植える花壇づくりを市民の手で行い、まちの緑を増やしたい。")


def receive(session: Session, text: tuple[str, str], organization: str, email: str = "") -> Proposal:
    proposal, _ = receive_proposal(session=session, proposal_in=ProposalCreate(
        title=text[0], body=text[1], organization=organization, email=email))
    return proposal


def rematch(runner) -> None:
    result = runner.invoke(cli, ["rematch"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def group(session):
    """The four proposals (test data), stored without online matching."""
    return {
        "first": receive(session, SCHOOL, "NPO法人 まなびや", "info@manabiya.example.jp"),
        # Retyped by the same group, its address typed in capitals and full width.
        "retyped": receive(session, RETYPED, "ＮＰＯ法人まなびや", "ＩＮＦＯ@Manabiya.example.jp"),
        "other_project": receive(session, OTHER_PROJECT, "NPO法人 まなびや", "info@manabiya.example.jp"),
        "other_group": receive(session, SCHOOL, "子ども応援団", "kodomo@example.jp"),
        "park": receive(session, PARK, "みどりの会", "midori@example.jp"),
    }


def ids(group, *names):
    return {group[n].id for n in names}


def test_the_rematch_stores_related_lists_and_flags_the_duplicate_on_both_sides(runner, session, group):
    rematch(runner)
    session.expire_all()
    first = related_for(session=session, proposal_id=group["first"].id)
    assert [item.row.rank for item in first] == list(range(1, len(first) + 1))
    assert first[0].other.id in ids(group, "retyped", "other_group")  # the same text comes first
    assert all(item.row.match_run_id is not None for item in first)
    school = next(item for item in first if item.other.id == group["retyped"].id)
    assert "学習" in school.row.terms and school.row.semantic is None  # lexical mode: no e5 likeness
    flagged = duplicates_of(session=session, proposal_ids=[p.id for p in group.values()])
    assert flagged[group["first"].id] == ids(group, "retyped")
    assert flagged[group["retyped"].id] == ids(group, "first")
    # Another project of the same group, and the same text from another group, are not duplicates.
    assert flagged[group["other_project"].id] == set() and flagged[group["other_group"].id] == set()


def test_a_new_proposal_gets_its_related_list_online_and_flags_the_older_one(app, runner, session, group):
    rematch(runner)
    again = receive(session, SCHOOL, "NPO法人まなびや", "other@manabiya.example.jp")
    assert get_matching(app).suggest_online(session=session, proposal_ids=[again.id]) > 0
    session.expire_all()
    mine = related_for(session=session, proposal_id=again.id)
    assert mine and all(item.row.match_run_id is None for item in mine)
    assert {item.other.id for item in mine[:3]} >= ids(group, "first", "other_group")
    # The older proposal's list now holds the new one (an online row wins over the run's).
    older = related_for(session=session, proposal_id=group["first"].id)
    assert again.id in {item.other.id for item in older}
    assert again.id in duplicates_of(session=session, proposal_ids=[group["first"].id])[group["first"].id]
    rematch(runner)  # the next run replaces the online rows
    session.expire_all()
    assert session.exec(select(RelatedProposal).where(col(RelatedProposal.match_run_id).is_(None))).all() == []
    assert again.id in {item.other.id for item in related_for(session=session, proposal_id=group["first"].id)}


def test_merge_is_one_command_with_its_event_and_the_npo_s_e_mail(app, runner, engine, session, group, smtp_server):
    rematch(runner)
    kept, merged = group["first"], group["retyped"]
    stage_before = merged.stage
    change = merge_proposals(session=session, proposal=merged, into=kept, actor=COORDINATOR)
    assert (change.stage_from, change.stage_to) == (stage_before, "withdrawn")
    assert change.event is not None and change.event.action == "proposal.merge"
    with Session(engine) as other:
        stored = other.get(Proposal, merged.id)
        assert stored.merged_into_id == kept.id and stored.stage == "withdrawn"
        assert other.get(Proposal, kept.id).merged_into_id is None  # the kept one goes on as it was
        events = other.exec(select(AuditEvent).where(AuditEvent.action == "proposal.merge")).all()
        assert [(e.entity_id, e.detail["into_id"], e.actor) for e in events] == [(str(merged.id), kept.id, "coord")]
        [mail] = other.exec(select(MailMessage).where(MailMessage.kind == "merged")).all()
        assert mail.proposal_id == merged.id and mail.secret is None
    assert duplicates_of(session=session, proposal_ids=[kept.id])[kept.id] == set()  # the flag is off

    app.config.update(MAIL_SERVER=smtp_server.host, MAIL_PORT=smtp_server.port)
    assert send_now(app).sent >= 1
    [received] = [r for r in smtp_server.received if r.rcpt_tos == ["ＩＮＦＯ@Manabiya.example.jp"]
                  and "まとめました" in r.message["Subject"]]
    text = received.message.get_content()
    assert kept.receipt_number in text and merged.receipt_number in received.message["Subject"]
    assert "/status/" not in text  # never the kept proposal's private link


def test_unmerge_restores_the_stage_and_the_flag_with_its_event(runner, engine, session, group):
    rematch(runner)
    kept, merged = group["first"], group["retyped"]
    merge_proposals(session=session, proposal=merged, into=kept, actor=COORDINATOR)
    change = unmerge(session=session, proposal=merged, actor=COORDINATOR)
    assert (change.stage_from, change.stage_to) == ("withdrawn", "received")
    assert change.event is not None and change.event.action == "proposal.unmerge"
    with Session(engine) as other:
        stored = other.get(Proposal, merged.id)
        assert (stored.merged_into_id, stored.stage) == (None, "received")
    assert duplicates_of(session=session, proposal_ids=[kept.id])[kept.id] == {merged.id}
    with pytest.raises(MergeRefused):
        unmerge(session=session, proposal=merged, actor=COORDINATOR)  # nothing left to undo


def test_merges_that_cannot_be_are_refused_and_write_nothing(session, group):
    first, retyped, park = group["first"], group["retyped"], group["park"]
    with pytest.raises(MergeRefused):
        merge_proposals(session=session, proposal=first, into=first)
    merge_proposals(session=session, proposal=retyped, into=first)
    for proposal, into in ((retyped, park), (park, retyped), (first, park)):
        with pytest.raises(MergeRefused):  # merged already; into a merged one; others merged into it
            merge_proposals(session=session, proposal=proposal, into=into)
    with pytest.raises(StaleDecision):
        merge_proposals(session=session, proposal=park, into=first, expected_version=park.version + 5)
    session.expire_all()
    assert session.get(Proposal, park.id).merged_into_id is None
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "proposal.merge")).all()) == 1


def test_not_a_duplicate_stays_off_across_rematches(runner, session, group):
    rematch(runner)
    first, retyped = group["first"], group["retyped"]
    assert mark_not_duplicate(session=session, proposal=retyped, other=first, actor=COORDINATOR) is True
    assert mark_not_duplicate(session=session, proposal=first, other=retyped, actor=COORDINATOR) is False  # one per pair
    assert [(m.proposal_id, m.other_id) for m in session.exec(select(NotDuplicate))] == [(first.id, retyped.id)]
    rematch(runner)
    session.expire_all()
    # The run still finds the pair alike; the coordinator's mark keeps the flag off.
    stored = session.exec(select(RelatedProposal).where(
        RelatedProposal.proposal_id == first.id, RelatedProposal.related_id == retyped.id)).one()
    assert stored.duplicate is True
    assert duplicates_of(session=session, proposal_ids=[first.id, retyped.id]) == {first.id: set(), retyped.id: set()}
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "proposal.not_duplicate")).all()
    assert len(events) == 1


def test_unmerge_tells_the_npo_once_over_smtp(app, runner, engine, session, group, smtp_server):
    rematch(runner)
    kept, merged = group["first"], group["retyped"]
    merge_proposals(session=session, proposal=merged, into=kept, actor=COORDINATOR)
    unmerge(session=session, proposal=merged, actor=COORDINATOR)
    with Session(engine) as other:
        [mail] = other.exec(select(MailMessage).where(MailMessage.kind == "unmerged")).all()
        assert mail.proposal_id == merged.id and mail.to_address == "ＩＮＦＯ@Manabiya.example.jp"
        assert mail.context["into_receipt_number"] == kept.receipt_number and mail.secret is None
    app.config.update(MAIL_SERVER=smtp_server.host, MAIL_PORT=smtp_server.port, PUBLIC_URL="https://kyodo.example.jp")
    assert send_now(app).sent == len(group) + 2  # the receipts, the merge's message and the unmerge's
    assert send_now(app).sent == 0  # each once
    [received] = [r for r in smtp_server.received if "単独で検討" in r.message["Subject"]]
    assert received.rcpt_tos == ["ＩＮＦＯ@Manabiya.example.jp"] and merged.receipt_number in received.message["Subject"]
    text = received.message.get_content()
    assert f"受付番号 {merged.receipt_number} の提案として、単独で検討" in text and kept.receipt_number in text
    # The private link is stored hashed only: the mail points to the NPO's own link and the recovery page.
    assert "https://kyodo.example.jp/status/recover" in text and "受付のときにお送りしたメール" in text
    assert text.count("/status/") == 1


def test_withdrawing_not_a_duplicate_flags_the_pair_again_with_its_event(runner, engine, session, group):
    rematch(runner)
    first, retyped, park = group["first"], group["retyped"], group["park"]
    mark_not_duplicate(session=session, proposal=first, other=retyped, actor=COORDINATOR)
    assert duplicates_of(session=session, proposal_ids=[first.id])[first.id] == set()
    assert withdraw_not_duplicate(session=session, proposal=retyped, other=first, actor=COORDINATOR) is True
    with Session(engine) as other:
        assert other.exec(select(NotDuplicate)).all() == []
        [event] = other.exec(select(AuditEvent).where(AuditEvent.action == "proposal.not_duplicate_undo")).all()
        assert (event.entity_id, event.detail["other_id"], event.actor) == (str(retyped.id), first.id, "coord")
        assert event.detail["marked_by"] == "coord"
    flagged = duplicates_of(session=session, proposal_ids=[first.id, retyped.id])
    assert flagged == {first.id: {retyped.id}, retyped.id: {first.id}}
    # Nothing to withdraw: False and no event; a pair the rule does not flag stays unflagged.
    assert withdraw_not_duplicate(session=session, proposal=first, other=retyped, actor=COORDINATOR) is False
    mark_not_duplicate(session=session, proposal=first, other=park, actor=COORDINATOR)
    assert withdraw_not_duplicate(session=session, proposal=park, other=first, actor=COORDINATOR) is True
    assert park.id not in duplicates_of(session=session, proposal_ids=[first.id])[first.id]
    rematch(runner)  # the next run keeps the flag: no mark left to hide it
    session.expire_all()
    assert duplicates_of(session=session, proposal_ids=[first.id])[first.id] == {retyped.id}
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "proposal.not_duplicate_undo")).all()
    assert len(events) == 2
