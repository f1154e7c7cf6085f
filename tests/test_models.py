"""Schema, migrations, first-use seeding and the typed query functions, on
SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from factories import create_random_proposal, decide, program_by_external_id
from sqlalchemy import func, inspect
from sqlmodel import Session, SQLModel, select

from models.db import alembic_config, make_engine
from models.decisions import current_decisions, decision_history
from models.labels import CollaborationType, Stage, label, parse_collaboration_type
from models.proposals import get_proposal_by_receipt, get_proposal_by_token
from models.tables import AuditEvent, Decision, Program, ProposalCreate


def test_migration_creates_exactly_the_models_tables(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in SQLModel.metadata.sorted_tables} | {"alembic_version"} == tables


def test_downgrade_then_upgrade_round_trips(engine):
    config = alembic_config(engine)
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert "suggestion" in inspect(engine).get_table_names()


def test_migration_0002_adds_and_removes_the_semantic_columns(app, engine, session):
    from web.db import get_matching

    proposal = create_random_proposal(session)
    assert get_matching(app).suggest_online(session=session, proposal_ids=[proposal.id]) == 5
    session.close()
    config = alembic_config(engine)

    def columns(table: str) -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns(table)}

    semantic = {"lexical_score", "semantic_score", "carried_by"}
    assert semantic <= columns("suggestion") and "mode" in columns("match_run")
    command.downgrade(config, "0001")
    assert not semantic & columns("suggestion") and "mode" not in columns("match_run")
    assert "embedding_cache" not in inspect(engine).get_table_names()
    with engine.connect() as connection:  # the rows written before stay
        assert connection.exec_driver_sql("SELECT count(*) FROM suggestion").scalar() == 5
    command.upgrade(config, "head")
    assert semantic <= columns("suggestion") and "mode" in columns("match_run")
    assert columns("embedding_cache") == {"fingerprint", "model_version", "vector", "created_at"}
    assert inspect(engine).get_pk_constraint("embedding_cache")["constrained_columns"] == ["fingerprint", "model_version"]
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM suggestion WHERE semantic_score IS NULL").scalar() == 5


def test_first_use_loads_the_bundled_catalogue_once(session, app):
    count = session.exec(select(func.count()).select_from(Program)).one()
    assert count == 30
    years = set(session.exec(select(Program.fiscal_year)))
    assert years == {2008}
    from models.db import init_db

    second = make_engine(app.config["DATABASE_URL"])
    init_db(second)  # a second start loads nothing more
    second.dispose()
    session.expire_all()
    assert session.exec(select(func.count()).select_from(Program)).one() == 30


def test_sqlite_engine_has_foreign_keys_and_wal(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    engine.dispose()


def test_proposal_gets_receipt_number_and_private_token(session):
    from office.intake import receive_proposal as create_proposal

    proposal, token = create_proposal(
        session=session,
        proposal_in=ProposalCreate(title="防災講座", body="地域の防災講座を開きたい", collaboration_type="subsidy"),
    )
    assert re.fullmatch(r"20\d\d-\d{6}", proposal.receipt_number or "")
    assert proposal.stage == Stage.RECEIVED
    assert token not in proposal.status_token_hash  # only the hash is stored
    assert len(token) >= 32
    assert get_proposal_by_token(session=session, token=token).id == proposal.id
    assert get_proposal_by_token(session=session, token=token + "x") is None
    assert get_proposal_by_receipt(session=session, receipt=proposal.receipt_number).id == proposal.id
    other = create_random_proposal(session, "環境")
    assert other.receipt_number != proposal.receipt_number


def test_stage_change_is_audited(session):
    from office.commands import Actor, set_stage

    proposal = create_random_proposal(session)
    set_stage(session=session, proposal=proposal, stage=Stage.CHECKING, actor=Actor(name="山田"))
    assert proposal.stage == "checking"
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "proposal.stage")).one()
    assert event.detail == {"from": "received", "to": "checking"} and event.actor == "山田"


def test_decisions_are_append_only_with_a_current_verdict(session):
    proposal = create_random_proposal(session)
    program = program_by_external_id(session, "H20-01")
    first = decide(session, proposal.id, program.id, "rejected", "担当課が違う")
    second = decide(session, proposal.id, program.id, "accepted", "再検討で採用")
    history = decision_history(session=session, proposal_id=proposal.id, program_id=program.id)
    assert [d.id for d in history] == [first.id, second.id]
    assert [d.verdict for d in history] == ["rejected", "accepted"]
    current = current_decisions(session=session, proposal_ids=[proposal.id])
    assert current[(proposal.id, program.id)].id == second.id
    assert session.exec(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "decision")).one() == 2


def test_unknown_verdict_is_refused(session):
    proposal = create_random_proposal(session)
    program = program_by_external_id(session, "H20-01")
    with pytest.raises(ValueError, match="verdict"):
        decide(session, proposal.id, program.id, "maybe")
    assert session.exec(select(func.count()).select_from(Decision)).one() == 0


def test_foreign_keys_are_enforced(engine):
    from sqlalchemy.exc import IntegrityError

    with Session(engine) as session:
        session.add(Decision(proposal_id=999_999, program_id=999_999, verdict="accepted"))
        with pytest.raises(IntegrityError):
            session.commit()


def test_japanese_labels_live_in_one_place():
    assert label(Stage.ADOPTED) == "採択" and label(Stage.NOT_ADOPTED) == "不採択"
    # Codes shared by two enums keep their own labels ("withdrawn", "running", "failed").
    from models.labels import MailStatus, RunStatus, Verdict

    assert (label(Stage.WITHDRAWN), label(Verdict.WITHDRAWN)) == ("取り下げ", "取り消し")
    assert (label(Stage.RUNNING), label(RunStatus.RUNNING)) == ("実施中", "実行中")
    assert (label(MailStatus.FAILED), label(RunStatus.FAILED)) == ("送信失敗", "失敗")
    assert label(CollaborationType.CO_HOSTING) == "共催"
    assert parse_collaboration_type("後援") is CollaborationType.ENDORSEMENT
    assert parse_collaboration_type("subsidy") is CollaborationType.SUBSIDY
    with pytest.raises(ValueError, match="委託"):
        parse_collaboration_type("寄付")


def test_every_audit_action_has_a_japanese_label():
    import pathlib

    from models.labels import AUDIT_ACTIONS

    root = pathlib.Path(__file__).resolve().parents[1]
    written = set()
    for path in [*root.glob("office/*.py"), *root.glob("models/*.py")]:
        text = path.read_text(encoding="utf-8")
        written |= set(re.findall(r'action="([a-z_.]+)"', text)) | set(re.findall(r'ACTION = "([a-z_.]+)"', text))
    assert written and written <= set(AUDIT_ACTIONS), written - set(AUDIT_ACTIONS)
