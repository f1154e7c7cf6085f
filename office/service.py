"""The matching service: built once per app from its settings (MATCH_MODE,
INDEX_PATH, TOP_K) and kept in ``app.extensions`` by web.db; the commands and
the batch build their own. It resolves the mode once, holds the index store,
and is what online matching and the rematch are called through.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from matcher import MatchIndex, ProgramIndex, make_index
from matcher.semantic import MATCH_MODES, Embedder, resolve_mode
from models.db import engine_of
from models.locks import DEFAULT_STALE_AFTER
from models.programs import active_program_records
from models.suggestions import latest_run
from office import online
from office.embeddings import load_embeddings, store_embeddings
from office.rematch import RematchReport, rematch
from office.rows import DEFAULT_CHUNK_SIZE
from office.store import IndexStore, catalogue_key

log = logging.getLogger("kyodo.matching")


class MatchingService:
    """Online matching and the rematch for one database's settings."""

    # The range of the score that is comparable across proposals (the TF-IDF
    # cosine): the index's to say, read by the pages' filters and bars.
    comparable_scale: tuple[float, float] = ProgramIndex.comparable_scale

    def __init__(self, *, mode: str = "auto", index_path: str | Path, top_k: int = 5):
        if mode not in MATCH_MODES:
            raise ValueError(f"MATCH_MODE must be one of {MATCH_MODES}, not {mode!r}")
        self.setting = mode
        self.top_k = top_k
        self.store = IndexStore(index_path)
        self._resolved: tuple[str, Embedder | None] | None = None
        self._notes: set[str] = set()
        self._lock = threading.Lock()

    # -- the mode ---------------------------------------------------------------

    def resolve(self) -> tuple[str, Embedder | None]:
        """The mode the engine runs in, and its embedder, resolved once.

        ``auto`` is semantic when the extra is installed and its model
        verifies; when semantic is unavailable the engine runs lexical and
        logs one line saying why (a refused model is not hashed again).
        """
        with self._lock:
            if self._resolved is None:
                mode, embedder, note = resolve_mode(None if self.setting == "auto" else self.setting)
                if note:
                    self.note_once(note)
                self._resolved = (mode, embedder)
            return self._resolved

    @property
    def mode(self) -> str:
        return self.resolve()[0]

    @property
    def is_semantic(self) -> bool:
        return self.mode == "semantic"

    def note_once(self, note: str) -> None:
        """Log a line about the engine's mode once per service (not per request)."""
        if note not in self._notes:
            self._notes.add(note)
            log.warning("%s", note)

    def new_index(self, *, top_k: int | None = None, n_jobs: int = 1) -> MatchIndex:
        mode, embedder = self.resolve()
        return make_index(mode=mode, embedder=embedder, top_k=top_k or self.top_k, n_jobs=n_jobs)

    # -- the current index --------------------------------------------------------

    def current_index(self, *, session: Session) -> MatchIndex:
        """The index of the newest published run; if there is none yet, one
        fitted on the active programs, persisted for next time.

        The published run's index is used as it was saved (fused or TF-IDF),
        so online suggestions are scored as the published ones until the
        next run. LookupError when there are no active programs.
        """
        mode, embedder = self.resolve()
        run = latest_run(session=session)
        if run is not None and run.id is not None:
            index = self.store.load(self.store.run_folder(run.id), embedder)
            if index is not None:
                if run.mode and run.mode != mode:
                    self.note_once(
                        f"the published run {run.id} was matched in {run.mode} mode, MATCH_MODE gives {mode}: "
                        f"online matching runs {index.mode} until the next rematch"
                    )
                return index
        folder = self.store.catalogue_folder(catalogue_key(session), mode)
        index = self.store.load(folder, embedder)
        return index if index is not None else self._fit_catalogue(session, folder, embedder)

    def _fit_catalogue(self, session: Session, folder: Path, embedder: Embedder | None) -> MatchIndex:
        records = active_program_records(session=session)
        if not records:
            raise LookupError("no active programs: import a catalogue first (kyodo programs import)")
        engine = engine_of(session)
        stored = load_embeddings(engine=engine, embedder=embedder) if embedder else set()
        fresh = self.new_index()
        fresh.fit(records)  # type: ignore[arg-type]  # corpus records fit ProgramLike
        if embedder is not None:
            new = [k for k in fresh.passage_keys() if k not in stored]
            store_embeddings(engine=engine, embedder=embedder, keys=new)
        fresh.save(folder)
        index = self.store.load(folder, embedder)
        assert index is not None
        return index

    # -- matching -----------------------------------------------------------------

    def suggest_online(self, *, session: Session, proposal_ids: list[int], lexical_only: bool = False) -> int:
        """See :func:`office.online.suggest_online`."""
        return online.suggest_online(service=self, session=session, proposal_ids=proposal_ids, lexical_only=lexical_only)

    def rematch(
        self, *, engine: Engine, top_k: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
        n_jobs: int = 1, stale_after: timedelta = DEFAULT_STALE_AFTER,
        on_progress: Callable[[int, int], None] | None = None,
        after_chunk: Callable[[int, int], None] | None = None,
    ) -> RematchReport:
        """See :func:`office.rematch.rematch`."""
        return rematch(
            service=self, engine=engine, top_k=top_k or self.top_k, chunk_size=chunk_size, n_jobs=n_jobs,
            stale_after=stale_after, on_progress=on_progress, after_chunk=after_chunk,
        )
