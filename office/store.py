"""The fitted indexes on disk (``INDEX_PATH``) and the one kept in memory.

Folders: ``run-<id>`` holds the index a published run matched with (online
matching then scores as that run did); ``catalogue-<key>-<mode>`` an index
fitted on the active programs before any run, keyed by their ids and update
times. Older folders are removed once a newer run is published.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

from sqlmodel import Session, col, select

from matcher import MatchIndex, load_index
from matcher.semantic import Embedder
from models.tables import Program

_KINDS = ("run", "catalogue")


def catalogue_key(session: Session) -> str:
    """A short digest of the active programs' ids and update times."""
    digest = hashlib.sha256()
    rows = session.exec(
        select(col(Program.id), col(Program.updated_at)).where(col(Program.active).is_(True)).order_by(col(Program.id))
    )
    for pk, updated in rows:
        digest.update(f"{pk}:{updated.isoformat()};".encode())
    return digest.hexdigest()[:16]


class IndexStore:
    """The index folders under one path, and the last index loaded (one per
    store: the app keeps one store, so a worker holds one index in memory)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._loaded: dict[str, MatchIndex] = {}
        self._lock = threading.Lock()

    def run_folder(self, run_id: int) -> Path:
        return self.path / f"run-{run_id}"

    def catalogue_folder(self, key: str, mode: str) -> Path:
        return self.path / f"catalogue-{key}-{mode}"

    def load(self, directory: Path, embedder: Embedder | None) -> MatchIndex | None:
        """The index saved in ``directory`` (kept in memory after the first
        load), or None when there is none or it cannot be read (then refit)."""
        key = f"{directory.resolve()}|{'semantic' if embedder is not None else 'lexical'}"
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            try:
                index = load_index(directory, embedder)
            except (OSError, ValueError, KeyError):
                return None  # removed while loading, an old format or another model: refit
            if index is None:
                return None
            self._loaded.clear()
            self._loaded[key] = index
            return index

    def remove_older(self, keep_run_id: int) -> None:
        """After publication: every run and catalogue folder but the published run's."""
        keep = self.run_folder(keep_run_id).name
        for folder in self.path.glob("*-*"):
            if folder.is_dir() and folder.name != keep and folder.name.split("-")[0] in _KINDS:
                shutil.rmtree(folder, ignore_errors=True)
