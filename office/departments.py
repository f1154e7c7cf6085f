"""The coordinator's changes to the departments (担当課): a file imported, one
department edited. One command each: one transaction, one event, one commit.

A department's name is never changed here: the programs' 担当課 cells name it,
and they are the one home of that link (see ``models.departments``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from models.audit import record_event
from models.departments import EDITABLE, DepartmentImportReport, apply_changes, upsert_departments
from models.workflow_tables import Department, DepartmentCreate
from office.commands import NOBODY, Actor


def import_departments(
    *, session: Session, records: Sequence[DepartmentCreate], source_file: str = "", actor: Actor = NOBODY,
) -> DepartmentImportReport:
    """Add the new departments and update the known ones by name, all in one
    transaction; a department missing from the file stays as it is (an import
    never deletes). The records are validated already
    (``models.departments.load_departments``), so a bad file never gets here."""
    report = upsert_departments(session=session, departments_in=records)
    record_event(
        session=session, action="departments.import", entity="department", actor=actor.name,
        user_id=actor.user_id, detail={"source_file": source_file, **report.counts()},
    )
    session.commit()
    return report


def update_department(
    *, session: Session, department: Department, data: DepartmentCreate, actor: Actor = NOBODY,
) -> bool:
    """Set one department's 部, メールアドレス, 所掌事務 and 有効 from ``data``
    (its name is ignored); False, and nothing written, when nothing changed."""
    changes = apply_changes(department, {key: getattr(data, key) for key in EDITABLE})
    if not changes:
        return False
    session.add(department)
    record_event(
        session=session, action="department.update", entity="department", entity_id=department.id or "",
        actor=actor.name, user_id=actor.user_id, detail={"name": department.name, "changes": changes},
    )
    session.commit()
    return True
