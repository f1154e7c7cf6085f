"""program_import, program_change and program.import_id: catalogue imports in stages; readable ids

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A big import writes its rows in short transactions, tagged with import_id and
invisible until its program_import row is published (models.program_imports);
existing rows (import_id NULL) are seen as before. program_change holds the
new content of the programs an import changes, set by one UPDATE at the flip.

Programs imported without an id got ``auto-<hash>``; they get the readable id
of their fiscal year now (R8-001, H20-001: the era, its year, then a number
after the highest one the year already has), in the order they were stored.
Suggestions and decisions point at program.id, which does not change. The
downgrade keeps the readable ids (they are valid ids of any revision).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "program_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source_file", sa.String(length=500), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=True),
        sa.Column("default_fiscal_year", sa.Integer(), nullable=True),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("deactivated", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("fiscal_years", sa.JSON(), nullable=False),
        sa.Column("failure", sa.String(length=20), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_program_import"),
    )
    op.create_index("ix_program_import_status", "program_import", ["status"])
    op.create_table(
        "program_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("activities", sa.Text(), nullable=False),
        sa.Column("department", sa.String(length=500), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("budget", sa.Text(), nullable=False),
        sa.Column("budget_thousand_yen", sa.Integer(), nullable=True),
        sa.Column("section", sa.Text(), nullable=False),
        sa.Column("subsection", sa.Text(), nullable=False),
        sa.Column("policy_number", sa.String(length=50), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("keywords", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_program_change"),
    )
    op.create_index("ix_program_change_import_id", "program_change", ["import_id"])
    # Plain ADD COLUMN, no foreign key: no batch copy of program (on SQLite it
    # would cascade deletes to every suggestion and decision, see 0007).
    op.add_column("program", sa.Column("import_id", sa.Integer(), nullable=True))
    op.create_index("ix_program_import_id", "program", ["import_id"])
    # The flip's UPDATEs find the few rows they change by (active, fiscal_year),
    # not by walking every active row (SQLite picks ix_program_active alone).
    op.create_index("ix_program_active_fiscal_year", "program", ["active", "fiscal_year"])
    _readable_ids()


def _era(year: int) -> str:
    # As models.programs.readable_id, frozen here: a migration keeps its own rule.
    return f"R{year - 2018}" if year >= 2019 else f"H{year - 1988}"


def _readable_ids() -> None:
    bind = op.get_bind()
    program = sa.table("program", sa.column("id", sa.Integer()), sa.column("fiscal_year", sa.Integer()),
                       sa.column("external_id", sa.String()))
    rows = bind.execute(sa.select(program.c.id, program.c.fiscal_year, program.c.external_id)
                        .order_by(program.c.fiscal_year, program.c.id)).all()
    numbers: dict[int, int] = {}
    for _, year, external_id in rows:
        found = re.fullmatch(rf"{_era(year)}-(\d+)", external_id)
        if found:
            numbers[year] = max(numbers.get(year, 0), int(found.group(1)))
    for pk, year, external_id in rows:
        if external_id.startswith("auto-"):
            numbers[year] = numbers.get(year, 0) + 1
            bind.execute(sa.update(program).where(program.c.id == pk)
                         .values(external_id=f"{_era(year)}-{numbers[year]:03d}"))


def downgrade() -> None:
    op.drop_index("ix_program_active_fiscal_year", table_name="program")
    op.drop_index("ix_program_import_id", table_name="program")
    op.drop_column("program", "import_id")
    op.drop_index("ix_program_change_import_id", table_name="program_change")
    op.drop_table("program_change")
    op.drop_index("ix_program_import_status", table_name="program_import")
    op.drop_table("program_import")
