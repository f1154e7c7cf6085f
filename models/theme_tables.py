"""The tables of themes (open proposals grouped by what they are about) and of
a joint 協働事業 (one ``Project`` of several proposals), and what the API shows
of a theme (``ThemePublic``, ``ThemeDetailPublic``).

The nightly rematch regroups the open proposals into themes
(``office.themes.regroup``); what the coordinator did to a theme stays: a
renamed theme keeps its label (``label_by_coordinator``), a proposal the
coordinator moved (split, join) stays where it was put (``pinned``). See
docs/rematch.md, "Themes".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import AutoString, Field, SQLModel
from sqlmodel.main import SQLModelConfig

from models.clock import utcnow

THEME_LABEL_MAX = 100


class Theme(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    label: str = Field(default="", sa_type=AutoString(length=200))
    # The run's label (its characteristic words), kept even when the coordinator renamed the theme.
    terms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    label_by_coordinator: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ThemeMember(SQLModel, table=True):
    # A proposal is in at most one theme.
    __tablename__ = "theme_member"

    id: int | None = Field(default=None, primary_key=True)
    theme_id: int = Field(foreign_key="theme.id", ondelete="CASCADE", index=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE", unique=True)
    # Put here by the coordinator (split, join): no run moves it.
    pinned: bool = False


class ProjectProposal(SQLModel, table=True):
    # The proposals of a joint 協働事業, its lead (project.proposal_id) included;
    # a proposal is in at most one 協働事業, so the plan counts each project once.
    __tablename__ = "project_proposal"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", ondelete="CASCADE", index=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE", unique=True)
    created_at: datetime = Field(default_factory=utcnow)


# -- what the API shows ----------------------------------------------------------------


class ThemePublic(SQLModel):
    # A theme in GET /api/v1/themes: its open proposals only (closed or merged
    # ones stay members, hidden, as on the dashboard).
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    id: int
    label: str
    label_by_coordinator: bool = Field(description="named by the coordinator: no run renames it")
    proposal_ids: list[int] = Field(description="its open proposals, oldest first")
    organisation_count: int = Field(description="how many groups propose them (団体名, else e-mail)")


class ThemeProposal(SQLModel):
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    id: int
    receipt_number: str | None
    title: str
    organization: str
    stage: str
    stage_label: str
    pinned: bool = Field(description="placed by the coordinator (a split or a join): no run moves it")


class ThemeProgram(SQLModel):
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    id: int
    name: str
    department: str


class ThemeDetailPublic(ThemePublic):
    # GET /api/v1/themes/{id}: the theme page's content.
    terms: list[str] = Field(description="the run's characteristic words of the theme")
    organisations: list[str] = Field(description="the groups, as the first of their proposals writes them")
    proposals: list[ThemeProposal]
    programs: list[ThemeProgram] = Field(
        description="the programs its proposals share: in the first three published suggestions of more than half")
    departments: list[str] = Field(description="the 担当課 of those programs")
