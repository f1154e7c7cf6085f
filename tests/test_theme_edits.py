"""Themes of the open proposals, stored by the nightly rematch, and the
coordinator's edits (rename, split, join) surviving the next run; on SQLite
and PostgreSQL, with the real rematch (MatchingService.rematch)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from models.tables import AuditEvent, Proposal, ProposalCreate
from models.theme_tables import Theme, ThemeMember
from models.themes import members_of, new_theme, theme_of
from office import commands, theme_edits
from office.commands import Actor
from office.intake import receive_proposal
from web.db import get_engine, get_matching

# Three groups proposing a 子ども食堂 network, two a 防災 course, three alone
# (the lexical engine groups them so: checked by the first test).
THEME_TEXTS = [
    ("子ども食堂のネットワーク", "地域の子ども食堂をつなぐネットワークをつくり、食材の共同調達とボランティアの交流を進めたい。", "NPO こども広場"),
    ("子ども食堂の連携", "市内の子ども食堂が連携して、食材の寄付や運営のノウハウを共有するネットワークをつくりたい。", "みんなの食卓の会"),
    ("子ども食堂を広げる", "子ども食堂の運営団体どうしのネットワークで、食材と担い手を分け合い、子どもの居場所を増やしたい。", "地域ごはんクラブ"),
    ("地域の防災講座", "自治会と一緒に地域の防災講座と避難訓練を開き、高齢者の防災意識を高めたい。", "東町自治会"),
    ("防災訓練", "マンションの住民と防災訓練と防災講座を開き、避難の備えを高めたい。", "西町防災会"),
    ("川の清掃", "市民が参加する川の清掃活動と環境学習で、まちの環境美化を進めたい。", "川をきれいにする会"),
    ("市政の見える化", "市政情報や財政状況を分かりやすく公開し、市民が地域の課題を考える場をつくる。", "市政ウォッチ"),
    ("親子サロン", "子育て中の親子が集まるサロンを開き、子育ての悩みを地域で支え合いたい。", "子育てひろば"),
]
COORDINATOR = Actor(name="支援室 山田")


def add_theme_proposals(session: Session) -> list[Proposal]:
    """The eight proposals of THEME_TEXTS, received as the form stores them."""
    made = []
    for n, (title, body, organization) in enumerate(THEME_TEXTS):
        proposal, _ = receive_proposal(session=session, proposal_in=ProposalCreate(
            title=title, body=body, organization=organization, email=f"group{n}@example.jp"))
        made.append(proposal)
    return made


def run(app) -> None:
    get_matching(app).rematch(engine=get_engine(app), top_k=3)


def grouping(session: Session, proposals: list[Proposal]) -> list[int | None]:
    """The theme id of each proposal (None: in none)."""
    session.expire_all()
    found = {m.proposal_id: m.theme_id for m in session.exec(select(ThemeMember))}
    return [found.get(p.id) for p in proposals]


def theme_at(session: Session, proposal: Proposal) -> Theme:
    found = theme_of(session=session, proposal_id=proposal.id)
    assert found is not None
    return found


@pytest.fixture
def grouped(app, session) -> list[Proposal]:
    proposals = add_theme_proposals(session)
    run(app)
    return proposals


def test_the_rematch_groups_the_open_proposals(app, session):
    proposals = add_theme_proposals(session)
    closed, _ = receive_proposal(session=session, proposal_in=ProposalCreate(
        title="子ども食堂の応援", body="子ども食堂のネットワークに食材を届けたい。", organization="閉じた会"))
    commands.set_stage(session=session, proposal=closed, stage="withdrawn")
    run(app)
    ids = grouping(session, proposals)
    assert ids[0] == ids[1] == ids[2] and ids[3] == ids[4] and ids[0] != ids[3]
    assert len(set(ids[5:])) == 3 and not set(ids[5:]) & {ids[0], ids[3]}
    assert theme_at(session, proposals[0]).label == "子ども・食堂・ネットワーク"
    assert grouping(session, [closed]) == [None]  # a closed proposal is in no theme
    # A second run with nothing changed keeps the same themes (the same ids).
    run(app)
    assert grouping(session, proposals) == ids


def test_a_renamed_theme_keeps_its_name_and_takes_new_proposals(app, session, grouped):
    kids = theme_at(session, grouped[0])
    theme_edits.rename_theme(session=session, theme=kids, label="子ども食堂ネットワーク", actor=COORDINATOR)
    late, _ = receive_proposal(session=session, proposal_in=ProposalCreate(
        title="子ども食堂の食材", body="子ども食堂のネットワークで食材の共同調達を進め、ボランティアを募りたい。",
        organization="フードバンク市民の会"))
    run(app)
    session.expire_all()
    assert theme_at(session, grouped[0]).id == kids.id
    assert theme_at(session, late).id == kids.id
    assert theme_at(session, grouped[0]).label == "子ども食堂ネットワーク"
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "theme.rename")).one()
    assert event.detail == {"from": "子ども・食堂・ネットワーク", "to": "子ども食堂ネットワーク", "named_before": False}


def test_a_split_survives_the_rematch(app, session, grouped):
    kids = theme_at(session, grouped[0])
    new = theme_edits.split_theme(session=session, theme=kids, proposal_ids=[grouped[2].id], label="居場所づくり",
                             actor=COORDINATOR)
    run(app)
    run(app)
    ids = grouping(session, grouped)
    assert ids[:3] == [kids.id, kids.id, new.id]
    session.expire_all()
    assert session.get(Theme, new.id).label == "居場所づくり"
    assert all(m.pinned for _, m in members_of(session=session, theme_id=kids.id))


def test_a_join_survives_the_rematch(app, session, grouped):
    kids, safety = theme_at(session, grouped[0]), theme_at(session, grouped[3])
    assert kids.id != safety.id
    theme_edits.join_themes(session=session, theme=kids, other=safety, actor=COORDINATOR)
    assert session.get(Theme, safety.id) is None
    run(app)
    ids = grouping(session, grouped)
    assert ids[:5] == [kids.id] * 5
    assert session.get(Theme, safety.id) is None  # the run does not bring the joined theme back
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "theme.join")).one()
    assert event.detail["joined_id"] == safety.id and sorted(event.detail["proposal_ids"]) == [grouped[3].id, grouped[4].id]


def test_a_proposal_closed_leaves_its_theme_and_a_pinned_one_stays(app, session, grouped):
    kids = theme_at(session, grouped[0])
    theme_edits.split_theme(session=session, theme=kids, proposal_ids=[grouped[2].id], actor=COORDINATOR)
    commands.set_stage(session=session, proposal=grouped[1], stage="not_adopted")
    commands.set_stage(session=session, proposal=grouped[2], stage="withdrawn")
    safety = theme_at(session, grouped[3])
    commands.set_stage(session=session, proposal=grouped[4], stage="completed")
    run(app)
    ids = grouping(session, grouped)
    # grouped[1] and [2] were pinned by the split: kept (hidden while closed); [4] was not: gone.
    assert ids[1] == kids.id and ids[2] is not None and ids[4] is None
    assert ids[3] == safety.id
    assert [p.id for p, _ in members_of(session=session, theme_id=kids.id)] == [grouped[0].id]


def test_edits_that_cannot_be_made_write_nothing(session, grouped):
    kids, safety = theme_at(session, grouped[0]), theme_at(session, grouped[3])
    before = session.exec(select(AuditEvent)).all()
    cases = [
        lambda: theme_edits.rename_theme(session=session, theme=kids, label="  "),
        lambda: theme_edits.rename_theme(session=session, theme=kids, label="あ" * 101),
        lambda: theme_edits.rename_theme(session=session, theme=kids, label="名前\x07"),
        lambda: theme_edits.split_theme(session=session, theme=kids, proposal_ids=[]),
        lambda: theme_edits.split_theme(session=session, theme=kids, proposal_ids=[p.id for p in grouped[:3]]),
        lambda: theme_edits.split_theme(session=session, theme=kids, proposal_ids=[grouped[3].id]),
        lambda: theme_edits.join_themes(session=session, theme=kids, other=kids),
    ]
    for case in cases:
        with pytest.raises(theme_edits.ThemeEditError) as caught:
            case()
        assert caught.value.message
        session.rollback()
    assert session.exec(select(AuditEvent)).all() == before
    assert grouping(session, grouped)[:5] == [kids.id] * 3 + [safety.id] * 2
    assert theme_at(session, grouped[0]).label == "子ども・食堂・ネットワーク"


# -- undo ------------------------------------------------------------------------------


def undo(session: Session, theme: Theme, **kwargs) -> Theme:
    return theme_edits.undo_theme_edit(session=session, theme=theme, actor=COORDINATOR, **kwargs)


def undo_events(session: Session) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == "theme.undo").order_by(AuditEvent.id)))


def test_undo_steps_back_one_rename_at_a_time_and_never_reapplies_one(app, session, grouped):
    kids = theme_at(session, grouped[0])
    theme_edits.rename_theme(session=session, theme=kids, label="子ども食堂", actor=COORDINATOR)
    theme_edits.rename_theme(session=session, theme=kids, label="子ども食堂ネットワーク", actor=COORDINATOR)
    renames = [e.id for e in session.exec(select(AuditEvent).where(AuditEvent.action == "theme.rename"))]
    assert undo(session, kids).label == "子ども食堂" and kids.label_by_coordinator is True
    assert undo(session, kids).label == "子ども・食堂・ネットワーク" and kids.label_by_coordinator is False
    with pytest.raises(theme_edits.ThemeEditError, match="取り消せる編集はありません"):
        undo(session, kids)
    session.rollback()
    events = undo_events(session)
    assert [e.detail["undoes_event_id"] for e in events] == renames[::-1]  # newest first, each once
    assert events[0].detail["to"] == "子ども食堂" and events[0].actor == COORDINATOR.name
    run(app)  # the run names it again, as before the renames; neither name comes back
    assert theme_at(session, grouped[0]).label == "子ども・食堂・ネットワーク"


def test_an_undone_split_puts_the_proposals_back_and_survives_the_rematch(app, session, grouped):
    kids = theme_at(session, grouped[0])
    new = theme_edits.split_theme(session=session, theme=kids, proposal_ids=[grouped[2].id], label="居場所づくり",
                                  actor=COORDINATOR)
    new_id = new.id
    shown = undo(session, new)  # from the new theme's page: the split is its newest edit
    assert shown.id == kids.id and session.get(Theme, new_id) is None
    assert all(m.pinned for _, m in members_of(session=session, theme_id=kids.id))
    [event] = undo_events(session)
    assert event.detail["removed_theme_id"] == new_id and event.detail["proposal_ids"] == [grouped[2].id]
    run(app)
    run(app)
    assert grouping(session, grouped)[:3] == [kids.id] * 3


def test_an_undone_join_brings_the_theme_back_and_survives_the_rematch(app, session, grouped):
    kids, safety = theme_at(session, grouped[0]), theme_at(session, grouped[3])
    safety_id, safety_label = safety.id, safety.label
    theme_edits.join_themes(session=session, theme=kids, other=safety, actor=COORDINATOR)
    assert undo(session, kids).id == kids.id
    session.expire_all()
    restored = session.get(Theme, safety_id)
    assert restored is not None and restored.label == safety_label and restored.label_by_coordinator is False
    assert grouping(session, grouped)[:5] == [kids.id] * 3 + [safety_id] * 2
    run(app)
    assert grouping(session, grouped)[:5] == [kids.id] * 3 + [safety_id] * 2
    assert theme_edits.undo_plan(session=session, theme=kids).event is None  # the join was kids' only edit


def test_an_edit_of_two_themes_waits_for_the_later_edit_of_the_other(session, grouped):
    kids, safety = theme_at(session, grouped[0]), theme_at(session, grouped[3])
    new = theme_edits.split_theme(session=session, theme=kids, proposal_ids=[grouped[2].id], actor=COORDINATOR)
    theme_edits.rename_theme(session=session, theme=new, label="居場所", actor=COORDINATOR)
    plan = theme_edits.undo_plan(session=session, theme=kids)
    assert plan.event is not None and plan.event.action == "theme.split" and "居場所" in plan.refused
    with pytest.raises(theme_edits.ThemeEditError, match="その後の編集"):
        undo(session, kids)
    session.rollback()
    assert undo_events(session) == []
    assert undo(session, new).label == "子ども・食堂・ネットワーク（分割）"  # the rename first
    theme_edits.join_themes(session=session, theme=safety, other=new, actor=COORDINATOR)  # the split-off theme goes
    assert "統合されています" in theme_edits.undo_plan(session=session, theme=kids).refused
    undo(session, safety)  # the join, then the split
    assert undo(session, kids).id == kids.id
    assert grouping(session, grouped)[:5] == [kids.id] * 3 + [safety.id] * 2
    assert [e.detail["undone"] for e in undo_events(session)] == ["theme.rename", "theme.join", "theme.split"]


def test_a_stale_undo_and_a_reused_theme_id_change_nothing(session, grouped):
    kids, safety = theme_at(session, grouped[0]), theme_at(session, grouped[3])
    new = theme_edits.split_theme(session=session, theme=kids, proposal_ids=[grouped[2].id], actor=COORDINATOR)
    new_id = new.id
    split_event = theme_edits.undo_plan(session=session, theme=kids).event
    theme_edits.rename_theme(session=session, theme=kids, label="子ども食堂", actor=COORDINATOR)
    with pytest.raises(theme_edits.ThemeEditError, match="読み込み直して"):
        undo(session, kids, expected_event_id=split_event.id)  # the page showed the split; a rename came since
    session.rollback()
    assert undo_events(session) == [] and theme_at(session, grouped[0]).label == "子ども食堂"
    undo(session, kids)
    theme_edits.join_themes(session=session, theme=safety, other=new, actor=COORDINATOR)
    later = new_theme(session=session, label="あとのテーマ")  # SQLite may give it the deleted highest id
    session.commit()
    assert theme_edits.undo_plan(session=session, theme=later).event is None  # never the old theme's edits
    undo(session, safety)
    session.expire_all()
    back = theme_at(session, grouped[2])
    assert back.id != later.id and session.get(Theme, later.id).label == "あとのテーマ"
    if later.id == new_id:  # the id was reused: the split cannot find its theme, and says so
        assert "統合されています" in theme_edits.undo_plan(session=session, theme=kids).refused
    else:
        assert back.id == new_id and undo(session, kids).id == kids.id
