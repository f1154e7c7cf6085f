"""Saving and loading fitted indexes: ``.npz`` arrays and JSON, no pickle.

A folder holds a TF-IDF index (``arrays.npz`` + ``params.json``) or a fused
one (``semantic.npz`` + ``semantic.json``, its TF-IDF part in ``lexical/``).
Both files of a part are written under temporary names, then renamed: a
reader never sees arrays of one fit with the params of another. A folder of
another format version fails to load with ValueError (the caller refits).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import scipy.sparse as sp

from matcher.embedder import DIM

if TYPE_CHECKING:
    from matcher.embedder import Embedder
    from matcher.fused import FusedIndex
    from matcher.index import ProgramIndex
    from matcher.text import ProgramLike

FORMAT_VERSION = 2
SEMANTIC_FORMAT_VERSION = 2

P = TypeVar("P", bound="ProgramIndex")
F = TypeVar("F", bound="FusedIndex")


def corpus_fingerprint(params: dict[str, Any], programs: Sequence[ProgramLike]) -> str:
    """What a fitted TF-IDF index depends on: its parameters, the tokenizer's
    versions and each program's id, department and texts (SHA-256)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(params, sort_keys=True, ensure_ascii=False).encode())
    digest.update(f"fugashi={version('fugashi')};unidic-lite={version('unidic-lite')}".encode())
    for program in programs:
        digest.update(
            json.dumps(
                [program.id, program.department, program.text_fields()],
                sort_keys=True,
                ensure_ascii=False,
            ).encode()
        )
    return digest.hexdigest()


def _write(
    directory: Path, names: tuple[str, str], arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """``names[0].npz`` + ``names[1].json`` in ``directory``, each renamed into place."""
    npz, js = names
    tmp_arrays, tmp_meta = directory / f"{npz}.tmp.npz", directory / f"{js}.tmp.json"
    np.savez(tmp_arrays, allow_pickle=False, **arrays)
    tmp_meta.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    tmp_arrays.replace(directory / f"{npz}.npz")
    tmp_meta.replace(directory / f"{js}.json")


def save_program_index(index: ProgramIndex, directory: Path) -> Path:
    """Write a fitted :class:`ProgramIndex` to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "idf": index.idf_,
        "programs_data": index.program_matrix_.data,
        "programs_indices": index.program_matrix_.indices,
        "programs_indptr": index.program_matrix_.indptr,
        "term_field": index.term_field_,
    }
    meta = {
        "format_version": FORMAT_VERSION,
        "fingerprint": index.fingerprint_,
        "params": index._public_params(),
        "unseen_idf": index.unseen_idf_,
        "vocabulary": index.get_feature_names_out().tolist(),
        "programs": [
            {"id": i, "name": n, "department": d, "departments": ds}
            for i, n, d, ds in zip(
                index.program_ids_,
                index.program_names_,
                index.program_departments_,
                index.program_department_lists_,
                strict=True,
            )
        ],
    }
    _write(directory, ("arrays", "params"), arrays, meta)
    return directory


def load_program_index(cls: type[P], directory: Path) -> P:
    """Read an index written by :func:`save_program_index`."""
    meta = json.loads((directory / "params.json").read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"index format {meta.get('format_version')} is not {FORMAT_VERSION}: refit it")
    index = cls(**meta["params"])
    vocabulary = meta["vocabulary"]
    n_terms, n_programs = len(vocabulary), len(meta["programs"])
    with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
        index.idf_ = arrays["idf"]
        index.program_matrix_ = sp.csr_matrix(
            (arrays["programs_data"], arrays["programs_indices"], arrays["programs_indptr"]),
            shape=(n_programs, n_terms),
        )
        index.term_field_ = arrays["term_field"]
    index.feature_names_ = np.asarray(vocabulary, dtype=object)
    index.unseen_idf_ = float(meta["unseen_idf"])
    index.vocabulary_ = {t: i for i, t in enumerate(vocabulary)}
    index.program_ids_ = [p["id"] for p in meta["programs"]]
    index.program_names_ = [p["name"] for p in meta["programs"]]
    index.program_departments_ = [p["department"] for p in meta["programs"]]
    index.program_department_lists_ = [list(p["departments"]) for p in meta["programs"]]
    index.fingerprint_ = meta["fingerprint"]
    return index


def save_fused_index(index: FusedIndex, directory: Path) -> Path:
    """Write a fitted :class:`FusedIndex`: its TF-IDF index (``lexical/``) and
    the program and exemplar embeddings with their fingerprints."""
    index.lexical_.save(directory / "lexical")
    meta = {
        "format_version": SEMANTIC_FORMAT_VERSION,
        "model_version": index.model_version_,
        "params": index._public_params(),
    }
    arrays = {
        "program_vectors": index.program_vectors_,
        "program_keys": np.asarray(index.program_keys_, dtype="U64"),
        "exemplar_vectors": index.exemplar_vectors_,
        "exemplar_programs": index.exemplar_programs_,
        "exemplar_ids": np.asarray(index.exemplar_ids_, dtype=str),
        "rejection_vectors": index.rejection_vectors_,
        "rejection_programs": index.rejection_programs_,
        "rejection_ids": np.asarray(index.rejection_ids_, dtype=str),
    }
    _write(directory, ("semantic", "semantic"), arrays, meta)
    return directory


def load_fused_index(cls: type[F], directory: Path, embedder: Embedder | None) -> F:
    """Read an index written by :func:`save_fused_index`; its program vectors
    also seed the embedder's cache."""
    from matcher.index import ProgramIndex

    meta = json.loads((directory / "semantic.json").read_text(encoding="utf-8"))
    if meta.get("format_version") != SEMANTIC_FORMAT_VERSION:
        raise ValueError(f"semantic index format {meta.get('format_version')}: refit it")
    index = cls(embedder=embedder, **meta["params"])
    embedder_ = index.get_embedder()
    if meta["model_version"] != embedder_.model_version:
        raise ValueError(
            f"index embedded with {meta['model_version']}, the model is {embedder_.model_version}: refit it"
        )
    index.lexical_ = ProgramIndex.load(directory / "lexical")
    index.lexical = ProgramIndex(**index.lexical_.get_params())
    with np.load(directory / "semantic.npz", allow_pickle=False) as arrays:
        index.program_vectors_ = arrays["program_vectors"]
        index.program_keys_ = arrays["program_keys"].tolist()
        index.exemplar_vectors_ = arrays["exemplar_vectors"].reshape(-1, DIM)
        index.exemplar_programs_ = arrays["exemplar_programs"].astype(np.int64)
        index.exemplar_ids_ = [str(x) for x in arrays["exemplar_ids"].tolist()]
        # Indexes saved before rejected pairings counted have none.
        has = "rejection_ids" in arrays.files
        index.rejection_vectors_ = arrays["rejection_vectors"].reshape(-1, DIM) if has else np.zeros((0, DIM))
        index.rejection_programs_ = arrays["rejection_programs"].astype(np.int64) if has else np.zeros(0, np.int64)
        index.rejection_ids_ = [str(x) for x in arrays["rejection_ids"].tolist()] if has else []
    index.model_version_ = meta["model_version"]
    embedder_.add_to_cache(index.program_keys_, index.program_vectors_)
    return index
