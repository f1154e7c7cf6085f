"""The coordinator's theme edits (rename, split, join) and their undo, one
command each: its rows, one event, one commit.

The rule (docs/rematch.md, "Themes"): nothing a coordinator did is undone by
a run. A renamed theme keeps its label; a proposal the coordinator moved is
``pinned`` and no run moves it.

Undo is a stack per theme, like decisions' (``office.commands.undo``): the
edits are the theme's ``theme.rename`` / ``theme.split`` / ``theme.join``
events, an undo is a ``theme.undo`` event naming the one it undoes, and each
undo steps back the newest edit not undone yet, never re-applying one. An edit
of two themes (a split, a join) is undone only once it is the newest of both:
undo the later edit of the other theme first. What an undo moves back is
pinned, as an edit's moves are, so the next run keeps it; an undone rename
gives the theme back its former name, and the run's care of it when the run
had named it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from corpus.text import has_control_characters
from models.audit import record_event
from models.clock import as_utc
from models.tables import AuditEvent
from models.theme_tables import THEME_LABEL_MAX, Theme
from models.themes import members_of, new_theme, place, restore_theme, theme_edit_events, touch
from office.commands import NOBODY, Actor

EDIT_ACTIONS = ("theme.rename", "theme.split", "theme.join")
UNDO_ACTION = "theme.undo"


class ThemeEditError(ValueError):
    """A theme edit that cannot be made; ``message`` says why, in Japanese. Nothing was written."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def clean_label(text: str) -> str:
    """A theme's name as typed; ThemeEditError when empty, too long or with control characters."""
    label = (text or "").strip()
    if not label:
        raise ThemeEditError("テーマ名を入力してください。")
    if len(label) > THEME_LABEL_MAX:
        raise ThemeEditError(f"テーマ名は{THEME_LABEL_MAX}文字以内で入力してください。")
    if has_control_characters(label):
        raise ThemeEditError("テーマ名に使えない文字が含まれています。")
    return label


def _done(session: Session, action: str, theme: Theme, actor: Actor, detail: dict[str, object]) -> Theme:
    record_event(session=session, action=action, entity="theme", entity_id=theme.id or "", actor=actor.name,
                 user_id=actor.user_id, detail=detail)
    session.commit()
    return theme


def rename_theme(*, session: Session, theme: Theme, label: str, actor: Actor = NOBODY) -> Theme:
    """The coordinator's name for the theme: no run replaces it."""
    new, before, named = clean_label(label), theme.label, theme.label_by_coordinator
    theme.label, theme.label_by_coordinator = new, True
    touch(theme)
    session.add(theme)
    return _done(session, "theme.rename", theme, actor, {"from": before, "to": new, "named_before": named})


def split_theme(*, session: Session, theme: Theme, proposal_ids: Iterable[int], label: str = "",
                actor: Actor = NOBODY) -> Theme:
    """Move some of the theme's open proposals into a new theme (returned).
    Both sides are pinned: the coordinator decided where each one goes."""
    assert theme.id is not None
    members = [p.id for p, _ in members_of(session=session, theme_id=theme.id)]
    chosen = sorted(set(proposal_ids))
    if not chosen:
        raise ThemeEditError("新しいテーマに分ける提案を選んでください。")
    if any(pid not in members for pid in chosen):
        raise ThemeEditError("このテーマにない提案が選ばれています。")
    if len(chosen) == len(members):
        raise ThemeEditError("すべての提案は分けられません。残す提案を一つ以上残してください。")
    named = bool((label or "").strip())
    other = new_theme(session=session, label=clean_label(label) if named else f"{theme.label}（分割）"[:THEME_LABEL_MAX],
                      terms=theme.terms, by_coordinator=named)
    assert other.id is not None
    place(session=session, proposal_ids=chosen, theme_id=other.id, pinned=True)
    place(session=session, proposal_ids=[p for p in members if p is not None and p not in chosen],
          theme_id=theme.id, pinned=True)
    _done(session, "theme.split", other, actor,
          {"theme_id": theme.id, "new_theme_id": other.id, "proposal_ids": chosen, "label": other.label})
    return other


def join_themes(*, session: Session, theme: Theme, other: Theme, actor: Actor = NOBODY) -> Theme:
    """Merge ``other`` into ``theme``: every proposal of both is pinned in
    ``theme``, which keeps its name; ``other`` is deleted (its name, words and
    age kept in the event, for the undo)."""
    assert theme.id is not None and other.id is not None
    if theme.id == other.id:
        raise ThemeEditError("同じテーマは統合できません。")
    moved = [p.id for p, _ in members_of(session=session, theme_id=other.id, open_only=False) if p.id is not None]
    own = [p.id for p, _ in members_of(session=session, theme_id=theme.id, open_only=False) if p.id is not None]
    place(session=session, proposal_ids=[*own, *moved], theme_id=theme.id, pinned=True)
    detail: dict[str, object] = {
        "theme_id": theme.id, "joined_id": other.id, "joined_label": other.label, "proposal_ids": moved,
        "joined_terms": list(other.terms), "joined_named": other.label_by_coordinator,
        "joined_created_at": as_utc(other.created_at).isoformat(),
    }
    session.delete(other)
    touch(theme)
    session.add(theme)
    return _done(session, "theme.join", theme, actor, detail)


# -- undo ------------------------------------------------------------------------------


def _ids(event: AuditEvent, *keys: str) -> list[int]:
    detail = event.detail or {}
    values = [detail.get(k) for k in keys] if keys else [event.entity_id]
    return [int(v) for v in values if isinstance(v, int) or (isinstance(v, str) and v.isdigit())]


def referenced(event: AuditEvent) -> set[int]:
    """The themes an edit was about: the renamed one, both sides of a split or a join."""
    if event.action == "theme.split":
        return set(_ids(event, "theme_id", "new_theme_id"))
    if event.action == "theme.join":
        return set(_ids(event, "theme_id", "joined_id"))
    return set(_ids(event))


def _undone(events: Sequence[AuditEvent]) -> set[int]:
    return {i for e in events if e.action == UNDO_ACTION for i in _ids(e, "undoes_event_id")}


def edit_stack(events: Sequence[AuditEvent], theme: Theme) -> list[AuditEvent]:
    """The theme's edits not undone yet, oldest first. An event older than the
    theme row is another theme's that had its id (SQLite reuses a deleted
    highest id): left out."""
    undone, born = _undone(events), as_utc(theme.created_at)
    return [e for e in events if e.action in EDIT_ACTIONS and e.id not in undone
            and theme.id in referenced(e) and as_utc(e.at) >= born]


@dataclass(frozen=True)
class UndoPlan:
    """What an undo on a theme's page would step back: ``event`` (None when
    nothing is left to undo) and, when it cannot be undone yet, why."""

    event: AuditEvent | None
    refused: str = ""


def _left_by(event: AuditEvent) -> list[int]:
    """The themes an edit left in place (a join deleted the other): each must
    still be as the edit left it for the undo."""
    if event.action == "theme.split":
        return _ids(event, "theme_id", "new_theme_id")
    return _ids(event, "theme_id") if event.action == "theme.join" else _ids(event)


def _live(session: Session, theme_id: int, event: AuditEvent) -> Theme | None:
    """The theme of this id as the edit knew it (not a later theme that took the id)."""
    theme = session.get(Theme, theme_id)
    return theme if theme is not None and as_utc(theme.created_at) <= as_utc(event.at) else None


def undo_plan(*, session: Session, theme: Theme) -> UndoPlan:
    """The newest edit of the theme not undone yet, and whether it can be undone now."""
    events = theme_edit_events(session=session, actions=(*EDIT_ACTIONS, UNDO_ACTION))
    stack = edit_stack(events, theme)
    if not stack:
        return UndoPlan(None)
    target = stack[-1]
    for theme_id in _left_by(target):
        other = _live(session, theme_id, target)
        if other is None:
            return UndoPlan(target, "この編集にかかわるテーマが、その後ほかのテーマに統合されています。先にその統合を取り消してください。")
        newest = edit_stack(events, other)
        if newest and newest[-1].id != target.id:
            return UndoPlan(target, f"テーマ「{other.label}」にその後の編集があります。先にそちらを取り消してください。")
    return UndoPlan(target)


def undo_theme_edit(*, session: Session, theme: Theme, actor: Actor = NOBODY,
                    expected_event_id: int | None = None) -> Theme:
    """Undo the theme's newest edit not undone yet (:func:`undo_plan`): one
    event ``theme.undo``, one commit; the theme to show afterwards (the one
    kept, when the undo of a split deleted this one). ThemeEditError (nothing
    written) when there is nothing to undo, it cannot be undone yet, or
    ``expected_event_id`` is not the edit it would undo (the page was stale)."""
    plan = undo_plan(session=session, theme=theme)
    if plan.event is None:
        raise ThemeEditError("取り消せる編集はありません。")
    if plan.refused:
        raise ThemeEditError(plan.refused)
    if expected_event_id is not None and plan.event.id != expected_event_id:
        raise ThemeEditError("このテーマはほかの操作で変わりました。ページを読み込み直してから取り消してください。")
    undo = {"theme.rename": _undo_rename, "theme.split": _undo_split, "theme.join": _undo_join}[plan.event.action]
    shown, detail = undo(session, plan.event)
    record_event(session=session, action=UNDO_ACTION, entity="theme", entity_id=shown.id or "", actor=actor.name,
                 user_id=actor.user_id, detail={"undoes_event_id": plan.event.id, "undone": plan.event.action,
                                                "label": shown.label, **detail})
    session.commit()
    return shown


def _undo_rename(session: Session, event: AuditEvent) -> tuple[Theme, dict[str, Any]]:
    theme = session.get(Theme, _ids(event)[0])
    assert theme is not None  # undo_plan found it live
    detail = event.detail or {}
    before, restored = theme.label, str(detail.get("from") or "")
    # Events written before named_before was recorded: False lets the next run name it again.
    theme.label, theme.label_by_coordinator = restored, bool(detail.get("named_before", False))
    touch(theme)
    session.add(theme)
    return theme, {"theme_id": theme.id, "from": before, "to": restored}


def _undo_split(session: Session, event: AuditEvent) -> tuple[Theme, dict[str, Any]]:
    kept_id, split_id = _ids(event, "theme_id", "new_theme_id")
    kept, split = session.get(Theme, kept_id), session.get(Theme, split_id)
    assert kept is not None and split is not None  # undo_plan found them live
    back = [p.id for p, _ in members_of(session=session, theme_id=split_id, open_only=False) if p.id is not None]
    place(session=session, proposal_ids=back, theme_id=kept_id, pinned=True)
    session.delete(split)
    touch(kept)
    session.add(kept)
    return kept, {"theme_id": kept_id, "removed_theme_id": split_id, "proposal_ids": back}


def _undo_join(session: Session, event: AuditEvent) -> tuple[Theme, dict[str, Any]]:
    detail = event.detail or {}
    kept_id, joined_id = _ids(event, "theme_id", "joined_id")
    kept = session.get(Theme, kept_id)
    assert kept is not None  # undo_plan found it live
    born = detail.get("joined_created_at")
    restored = restore_theme(session=session, theme_id=joined_id, label=str(detail.get("joined_label") or ""),
                             terms=[str(t) for t in detail.get("joined_terms") or []],
                             by_coordinator=bool(detail.get("joined_named", False)),
                             created_at=datetime.fromisoformat(born) if isinstance(born, str) else None)
    assert restored.id is not None
    own = {p.id for p, _ in members_of(session=session, theme_id=kept_id, open_only=False)}
    back = [int(pid) for pid in detail.get("proposal_ids") or [] if pid in own]
    place(session=session, proposal_ids=back, theme_id=restored.id, pinned=True)
    touch(kept)
    session.add(kept)
    return kept, {"theme_id": kept_id, "joined_id": joined_id, "restored_id": restored.id, "proposal_ids": back}
