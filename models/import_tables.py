"""A catalogue import in stages: ProgramImport (its progress and result) and
ProgramChange (an update it will apply). Re-exported by :mod:`models.tables`.

A big import is written in many short transactions: new programs as rows of
``program`` tagged with ``import_id`` (invisible to every query until the
import is published, see :mod:`models.program_imports`), the new content of
changed programs as ProgramChange rows. Publishing is one short transaction; a failed
or interrupted import is deleted and the previous catalogue stays current.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from models.clock import utcnow

# ProgramImport.status: queued (the file waits for the worker), staging (rows
# being written), then published or failed. Only published rows are seen.
QUEUED, STAGING, PUBLISHED, FAILED = "queued", "staging", "published", "failed"
FINISHED = (PUBLISHED, FAILED)
# ProgramImport.failure: why nothing was imported.
FILE_UNREADABLE, BAD_ROWS, NO_ROWS, INTERRUPTED, ERROR = "file", "rows", "empty", "interrupted", "error"


class ProgramImport(SQLModel, table=True):
    # One import of a city's file: the upload page shows its progress and result.
    __tablename__ = "program_import"

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=QUEUED, max_length=20, index=True)
    source_file: str = Field(default="", max_length=500)
    actor: str = Field(default="", max_length=200)
    fiscal_year: int | None = None  # the 年度 given for every row, if any
    default_fiscal_year: int | None = None  # the 年度 rows without one took, if any did
    rows_total: int = 0
    rows_done: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    skipped: int = 0  # invalid rows left out (the command's --skip-invalid only)
    fiscal_years: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    failure: str | None = Field(default=None, max_length=20)
    error: str | None = Field(default=None, sa_type=Text)  # one English line, for logs and the command
    # The bad rows: {"line": 12 or None, "message": English, "ja": Japanese}.
    problems: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ProgramChange(SQLModel, table=True):
    # An existing program's fields as the file has them, set by one UPDATE ... FROM
    # when the import is published. keywords None: the file has no キーワード column.
    __tablename__ = "program_change"

    id: int | None = Field(default=None, primary_key=True)
    import_id: int = Field(index=True)
    program_id: int
    name: str = Field(sa_type=Text)
    purpose: str = Field(sa_type=Text)
    activities: str = Field(sa_type=Text)
    department: str = Field(max_length=500)
    policy: str = Field(sa_type=Text)
    budget: str = Field(sa_type=Text)
    budget_thousand_yen: int | None = None
    section: str = Field(sa_type=Text)
    subsection: str = Field(sa_type=Text)
    policy_number: str = Field(max_length=50)
    source: str = Field(sa_type=Text)
    keywords: str | None = Field(default=None, sa_type=Text)
