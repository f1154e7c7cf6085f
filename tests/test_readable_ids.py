"""Readable ids for programs their file gives none (issue 12): 年度-通し番号 in
the bundled catalogue's style (H20-19), assigned in one place
(models.program_imports.with_readable_ids); migration 0011 gives them to the
programs stored with ``auto-<hash>`` before. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from sqlmodel import Session, col, select

from corpus import ProgramRecord
from corpus.programs import stable_id
from models.db import alembic_config
from models.program_imports import import_programs, readable_id, with_readable_ids
from models.tables import Program


def test_the_readable_id_is_the_era_its_year_and_a_number():
    assert [readable_id(2026, 1), readable_id(2019, 12), readable_id(2008, 19), readable_id(2026, 1000)] == [
        "R8-001", "R1-012", "H20-019", "R8-1000"]


def _without_id(name: str, policy: str = "地域の防災", year: int = 2026, keywords: str | None = None) -> ProgramRecord:
    return ProgramRecord(id=stable_id(policy, name), name=name, purpose="防災力を高める", policy=policy,
                         fiscal_year=year, keywords=keywords)


def test_ids_follow_the_highest_number_of_the_year_and_are_kept_on_a_new_import(session):
    first = [_without_id("防災講座"), _without_id("防災マップ")]
    import_programs(session=session, records=with_readable_ids(session=session, records=first))
    session.commit()
    again = with_readable_ids(session=session, records=[*first, _without_id("避難訓練"),
                                                        _without_id("防災講座", year=2027)])
    assert [r.id for r in again] == ["R8-001", "R8-002", "R8-003", "R9-001"]
    given = ProgramRecord(id="R8-010", name="備蓄の点検", purpose="備える", fiscal_year=2026)
    assert [r.id for r in with_readable_ids(session=session, records=[given, _without_id("給水訓練")])] == [
        "R8-010", "R8-011"]


def test_migration_0011_gives_auto_ids_a_readable_one(engine):
    config = alembic_config(engine)
    command.downgrade(config, "0010")
    program = sa.Table("program", sa.MetaData(), autoload_with=engine)
    now = datetime.now(UTC)
    base = {c.name: "" for c in program.columns if isinstance(c.type, sa.String | sa.Text)}
    base.update(active=True, created_at=now, updated_at=now, budget_thousand_yen=None)
    with engine.begin() as connection:
        for external_id, name in (("auto-7d7cbadb0628", "一つ目"), ("R8-002", "番号つき"), ("auto-0123456789ab", "二つ目")):
            connection.execute(sa.insert(program).values({**base, "fiscal_year": 2026, "external_id": external_id,
                                                          "name": name}))
    command.upgrade(config, "head")
    with Session(engine) as session:
        ids = dict(session.exec(select(Program.name, Program.external_id).where(col(Program.fiscal_year) == 2026)).all())
        assert ids == {"一つ目": "R8-003", "番号つき": "R8-002", "二つ目": "R8-004"}
        assert session.exec(select(Program.external_id).where(col(Program.fiscal_year) == 2008)
                            .order_by(col(Program.id))).first() == "H20-01"
