"""TF-IDF index of the city's programs, with explained rankings.

The index follows the scikit-learn estimator contract: hyperparameters are
keyword-only ``__init__`` arguments stored as given, validation happens in
``fit``, fitted state ends in ``_``, and ``match`` raises ``NotFittedError``
before ``fit``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import normalize as l2_normalize

from matcher.results import DepartmentScore, MatchResult, ProgramMatch, Term
from matcher.tokenize import tokenize_many

FORMAT_VERSION = 2
# "keywords": the coordinator's everyday words for a program (ProgramRecord.keywords).
FIELDS = ("name", "purpose", "activities", "policy", "keywords")

# Chosen on the dev split (tests/data/devset.jsonl) by benchmarks/tune_matcher.py:
# a grid over field weights, compounds and kanji features, then greedy stop
# words; see docs/quality.md for the figures. 施策名 (policy) gets weight 0:
# it is shared by several programs and pulled proposals to the wrong sibling.
DEFAULT_FIELD_WEIGHTS: dict[str, float] = {
    "name": 0.5,
    "purpose": 0.5,
    "activities": 1.0,
    "policy": 0.0,
    # The coordinator's everyday words: as much as the activities. Chosen on
    # the dev split with coordinator-style keywords written from the program
    # text alone (benchmarks/tune_keywords.py, docs/quality.md).
    "keywords": 1.0,
}
# Greedy selection on the dev split: each one raised MRR or the separation of
# in-scope from out-of-scope scores. Words such as 事業 or 推進, stop words by
# intuition, did not help there and stay.
DEFAULT_STOP_WORDS: tuple[str, ...] = (
    "支援", "制度", "協働", "図る", "開催", "団体", "実施", "様", "活動", "共",
    # Generic verbs, measured as one block afterwards: ranking unchanged on the
    # dev split, out-of-scope ordinary proposals flagged 89 % → 94 %, and they
    # no longer appear as "shared terms" that explain nothing.
    "行う", "付く", "成る", "有る", "出来る", "居る",
)
# Highest threshold that flags no in-scope ordinary dev proposal (0.10 flags
# 1.8 %); it flags 89 % of the out-of-scope ones. See docs/quality.md.
DEFAULT_NO_MATCH_THRESHOLD = 0.09
DEFAULT_KANJI_WEIGHT = 0.35

MAX_PROPOSAL_CHARS = 20_000
# Proposals tokenized together in a batch fit (bounds the token lists in memory).
COUNT_SLICE = 2000
# Prefix of single-kanji features (see ``kanji_weight``).
KANJI_PREFIX = "字:"


_KANJI = re.compile("[\u4e00-\u9fff\u3400-\u4dbf]")


def _is_kanji(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


class ProgramLike(Protocol):
    """What the index reads from a program: corpus.ProgramRecord fits."""

    # Read-only properties, so frozen dataclasses such as ProgramRecord fit.
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def departments(self) -> tuple[str, ...]: ...

    def text_fields(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class ProposalText:
    """The text of one proposal to match."""

    id: str
    title: str = ""
    body: str = ""


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def proposal_error(proposal: ProposalText) -> str | None:
    """Why a proposal cannot be matched, or None when it can."""
    if not proposal.body or not proposal.body.strip():
        return "body is empty"
    if len(proposal.title) + len(proposal.body) > MAX_PROPOSAL_CHARS:
        return f"text is longer than {MAX_PROPOSAL_CHARS} characters"
    if _CONTROL_CHARS.search(proposal.title) or _CONTROL_CHARS.search(proposal.body):
        return "text contains control characters"
    return None


def proposal_chunks(
    proposals: Iterable[ProposalText], chunk_size: int
) -> Iterator[list[ProposalText]]:
    """``proposals`` in lists of ``chunk_size``: what bounds a match's memory."""
    if isinstance(proposals, (str, bytes)):
        raise TypeError("proposals must be a sequence of ProposalText, not a string")
    chunk: list[ProposalText] = []
    for proposal in proposals:
        chunk.append(proposal)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _tf(counts: dict[str, int], sublinear: bool) -> dict[str, float]:
    if not sublinear:
        return {t: float(c) for t, c in counts.items()}
    return {t: 1.0 + math.log(c) for t, c in counts.items()}


def _count(tokens: Iterable[str], stop: frozenset[str]) -> dict[str, int]:
    # Interned: the counts of 10,000s of proposals then share one string per
    # term instead of holding a copy per proposal.
    counts: dict[str, int] = {}
    for token in tokens:
        if token not in stop:
            token = sys.intern(token)
            counts[token] = counts.get(token, 0) + 1
    return counts


class ProgramIndex(BaseEstimator):
    """Rank a city's programs for proposals by TF-IDF cosine similarity.

    Parameters
    ----------
    field_weights : dict or None
        Weight of each program field (``name`` 事業名, ``purpose`` 目的,
        ``activities`` 取り組み内容, ``policy`` 施策名) in the program vector:
        the program's term frequency is the weighted sum of the per-field
        (sublinear) frequencies. None means :data:`DEFAULT_FIELD_WEIGHTS`.
    top_k : int
        Programs returned per proposal.
    sublinear_tf : bool
        Use ``1 + log(count)`` as term frequency.
    stop_words : sequence of str or None
        Lemmas ignored on both sides. None means :data:`DEFAULT_STOP_WORDS`.
    compounds : bool
        Emit joined noun bigrams (see :func:`matcher.tokenize.tokenize`).
    title_weight : float
        Weight of the proposal title's terms relative to its body.
    no_match_threshold : float
        A proposal whose best score is below this is flagged ``no_match``.
    idf_from_proposals : bool
        Let the IDF also count documents among the proposal texts given to
        ``fit``.
    n_jobs : int
        Processes used to tokenize large batches (see
        :func:`matcher.tokenize.tokenize_many`).
    kanji_weight : float
        Also index each kanji of the content words as a feature
        (``字:災``), scaled by this weight (0 disables). NPOs name a
        program's topic in other words that often share a kanji with it
        (減災 / 防災, 育児 / 子育て); the scale keeps whole words dominant.

    Examples
    --------
    >>> from corpus import ProgramRecord
    >>> programs = [
    ...     ProgramRecord(id="a", name="防災講座", purpose="市民の防災意識を高める"),
    ...     ProgramRecord(id="b", name="広報紙の発行", purpose="市政情報を分かりやすく伝える"),
    ... ]
    >>> index = ProgramIndex(top_k=1).fit(programs)
    >>> [m.program_id for m in index.match([ProposalText("p", body="地域の防災講座を開きたい")])[0].matches]
    ['a']
    """

    def __init__(
        self,
        *,
        field_weights: dict[str, float] | None = None,
        top_k: int = 5,
        sublinear_tf: bool = True,
        stop_words: Sequence[str] | None = None,
        compounds: bool = False,
        title_weight: float = 1.0,
        no_match_threshold: float = DEFAULT_NO_MATCH_THRESHOLD,
        idf_from_proposals: bool = True,
        kanji_weight: float = DEFAULT_KANJI_WEIGHT,
        n_jobs: int = 1,
    ):
        self.field_weights = field_weights
        self.top_k = top_k
        self.sublinear_tf = sublinear_tf
        self.stop_words = stop_words
        self.compounds = compounds
        self.title_weight = title_weight
        self.no_match_threshold = no_match_threshold
        self.idf_from_proposals = idf_from_proposals
        self.kanji_weight = kanji_weight
        self.n_jobs = n_jobs

    # -- fitting -------------------------------------------------------------

    def _weights(self) -> dict[str, float]:
        weights = dict(DEFAULT_FIELD_WEIGHTS if self.field_weights is None else self.field_weights)
        unknown = set(weights) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown fields in field_weights: {sorted(unknown)}")
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise ValueError("field_weights must be non-negative with at least one positive")
        return {f: float(weights.get(f, 0.0)) for f in FIELDS}

    def _stop(self) -> frozenset[str]:
        return frozenset(DEFAULT_STOP_WORDS if self.stop_words is None else self.stop_words)

    def _tokens_many(self, texts: list[str]) -> list[list[str]]:
        out = tokenize_many(texts, compounds=self.compounds, n_jobs=self.n_jobs)
        if self.kanji_weight > 0:
            for tokens in out:
                # The same characters as _is_kanji, found by one regex scan.
                tokens += [KANJI_PREFIX + ch for ch in _KANJI.findall("".join(tokens))]
        return out

    def _proposal_counts_many(
        self, proposals: Sequence[ProposalText]
    ) -> list[dict[str, float] | None]:
        """Weighted term counts of each proposal; None for a proposal that
        cannot be matched (see :func:`proposal_error`)."""
        # A slice at a time: the token lists of every proposal at once would
        # weigh more than all their counts (peak memory of a 10,000 batch).
        out: list[dict[str, float] | None] = []
        for start in range(0, len(proposals), COUNT_SLICE):
            out += self._proposal_counts_slice(proposals[start : start + COUNT_SLICE])
        return out

    def _proposal_counts_slice(
        self, proposals: Sequence[ProposalText]
    ) -> list[dict[str, float] | None]:
        stop = self._stop()
        valid = [proposal_error(p) is None for p in proposals]
        texts: list[str] = []
        for proposal, ok in zip(proposals, valid, strict=True):
            if ok:
                texts += [proposal.body, proposal.title if self.title_weight else ""]
        tokens = iter(self._tokens_many(texts))
        out: list[dict[str, float] | None] = []
        for ok in valid:
            if not ok:
                out.append(None)
                continue
            counts: dict[str, float] = dict(_count(next(tokens), stop))
            for term, c in _count(next(tokens), stop).items():
                counts[term] = counts.get(term, 0.0) + self.title_weight * c
            out.append(counts)
        return out

    def fit(
        self, programs: Sequence[ProgramLike], proposals: Sequence[ProposalText] = ()
    ) -> ProgramIndex:
        """Fit the vocabulary, IDF and program vectors.

        Parameters
        ----------
        programs : sequence of program records
            Each has ``id``, ``name``, ``department``, ``departments`` and
            ``text_fields()``.
        proposals : sequence of ProposalText
            Only read when ``idf_from_proposals`` is true.

        Returns
        -------
        self
        """
        counts = self._proposal_counts_many(list(proposals)) if self.idf_from_proposals else []
        return self._fit(programs, counts)

    def fit_match(
        self,
        programs: Sequence[ProgramLike],
        proposals: Sequence[ProposalText],
        *,
        top_k: int | None = None,
        chunk_size: int = 1000,
    ) -> Iterator[MatchResult]:
        """Fit on ``programs`` (and ``proposals`` for the IDF), then match
        ``proposals``, tokenizing each proposal once.

        The nightly rematch and ``kyodo match`` use this; it yields as
        :meth:`iter_match` does.
        """
        proposals = list(proposals)
        counts = self._proposal_counts_many(proposals)
        self._fit(programs, counts if self.idf_from_proposals else [])
        k = self.top_k if top_k is None else top_k
        for start in range(0, len(proposals), chunk_size):
            end = start + chunk_size
            yield from self._match_chunk(proposals[start:end], k, counts[start:end])

    def _fit(
        self, programs: Sequence[ProgramLike], proposal_counts: Sequence[dict[str, float] | None]
    ) -> ProgramIndex:
        if isinstance(programs, (str, bytes)):
            raise TypeError("programs must be a sequence of program records, not a string")
        programs = list(programs)
        if not programs:
            raise ValueError("cannot fit on an empty program list")
        ids = [p.id for p in programs]
        if len(set(ids)) != len(ids):
            raise ValueError("program ids must be unique")
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        weights = self._weights()
        stop = self._stop()

        field_texts = [program.text_fields() for program in programs]
        tokens = iter(self._tokens_many([t.get(f, "") for t in field_texts for f in FIELDS]))
        field_counts: dict[str, list[dict[str, int]]] = {f: [] for f in FIELDS}
        for _ in programs:
            for f in FIELDS:
                field_counts[f].append(_count(next(tokens), stop))
        vocabulary: dict[str, int] = {}
        for f in FIELDS:
            for counts in field_counts[f]:
                for term in counts:
                    vocabulary.setdefault(term, len(vocabulary))
        # Sorted vocabulary: feature order must not depend on dict history,
        # so two fits on the same corpus give identical arrays.
        terms = sorted(vocabulary)
        vocabulary = {t: i for i, t in enumerate(terms)}

        n_programs, n_terms = len(programs), len(terms)
        field_tf = {
            f: self._matrix([_tf(c, self.sublinear_tf) for c in field_counts[f]], vocabulary)
            for f in FIELDS
        }
        tf = sp.csr_matrix((n_programs, n_terms), dtype=np.float64)
        for f in FIELDS:
            if weights[f]:
                tf = tf + weights[f] * field_tf[f]

        df = np.asarray((tf > 0).sum(axis=0)).ravel().astype(np.float64)
        n_docs = float(n_programs)
        for proposal_terms in proposal_counts:
            if proposal_terms is not None:
                for term in proposal_terms:
                    j = vocabulary.get(term)
                    if j is not None:
                        df[j] += 1
                n_docs += 1
        # Smooth IDF, as TfidfVectorizer(smooth_idf=True): an unseen term gets
        # the same formula with df = 0 (used for a proposal's unknown words).
        # idf_ is the IDF times the feature group's weight (kanji_weight for
        # single-kanji features), so both sides of the cosine are scaled alike.
        self.idf_ = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
        if self.kanji_weight > 0:
            for term, j in vocabulary.items():
                if term.startswith(KANJI_PREFIX):
                    self.idf_[j] *= self.kanji_weight
        self.unseen_idf_ = float(math.log(1.0 + n_docs) + 1.0)
        self.vocabulary_ = vocabulary
        self.feature_names_ = np.asarray(terms, dtype=object)
        self.program_matrix_ = l2_normalize(sp.csr_matrix(tf.multiply(self.idf_)), norm="l2")
        self.program_matrix_.sort_indices()
        self.term_field_ = self._term_fields(field_tf, weights)
        self.program_ids_ = ids
        self.program_names_ = [p.name for p in programs]
        self.program_departments_ = [p.department for p in programs]
        self.program_department_lists_ = [list(p.departments) for p in programs]
        self.fingerprint_ = self._fingerprint(programs)
        return self

    def _term_fields(
        self, field_tf: dict[str, sp.csr_matrix], weights: dict[str, float]
    ) -> np.ndarray:
        """For each stored weight of ``program_matrix_``, the index in FIELDS of
        the field that gives that term most of its weight in that program."""
        coo = self.program_matrix_.tocoo()
        rows, cols = coo.row, coo.col
        per_field = np.vstack(
            [weights[f] * np.asarray(field_tf[f][rows, cols]).ravel() for f in FIELDS]
        )
        # tocoo() of a CSR matrix with sorted indices keeps the CSR data order.
        return np.argmax(per_field, axis=0).astype(np.int8)

    @staticmethod
    def _matrix(rows: list[dict[str, float]], vocabulary: dict[str, int]) -> sp.csr_matrix:
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        for row in rows:
            for term, value in row.items():
                if term in vocabulary:
                    indices.append(vocabulary[term])
                    data.append(value)
            indptr.append(len(indices))
        matrix = sp.csr_matrix(
            (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int32), indptr),
            shape=(len(rows), len(vocabulary)),
        )
        matrix.sort_indices()
        return matrix

    def _fingerprint(self, programs: Sequence[ProgramLike]) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps(self._public_params(), sort_keys=True, ensure_ascii=False).encode())
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

    def _public_params(self) -> dict[str, Any]:
        params = self.get_params()
        params["stop_words"] = list(params["stop_words"]) if params["stop_words"] is not None else None
        return params

    def get_feature_names_out(self) -> np.ndarray:
        """The vocabulary, in column order."""
        self._check_fitted()
        return self.feature_names_

    def _check_fitted(self) -> None:
        if not hasattr(self, "program_matrix_"):
            raise NotFittedError("ProgramIndex is not fitted yet: call fit() or load() first")

    # -- matching ------------------------------------------------------------

    def _proposal_vectors(
        self,
        proposals: Sequence[ProposalText],
        counts_list: Sequence[dict[str, float] | None] | None = None,
    ) -> tuple[sp.csr_matrix, list[str | None]]:
        """L2-normalized proposal vectors over the program vocabulary.

        A proposal's words that no program uses still count in its norm (with
        the IDF of an unseen term): a proposal about something else should
        score low, not be judged on the few words it happens to share.
        """
        if counts_list is None:
            counts_list = self._proposal_counts_many(proposals)
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        errors: list[str | None] = []
        for proposal, counts in zip(proposals, counts_list, strict=True):
            error = proposal_error(proposal) if counts is None else None
            errors.append(error)
            row: dict[int, float] = {}
            norm_sq = 0.0
            if counts is not None:
                for term, count in counts.items():
                    tf = 1.0 + math.log(count) if self.sublinear_tf and count >= 1 else count
                    j = self.vocabulary_.get(term)
                    if j is None:
                        scale = self.kanji_weight if term.startswith(KANJI_PREFIX) else 1.0
                        norm_sq += (tf * self.unseen_idf_ * scale) ** 2
                    else:
                        w = tf * float(self.idf_[j])
                        row[j] = w
                        norm_sq += w * w
            norm = math.sqrt(norm_sq) or 1.0
            for j in sorted(row):
                indices.append(j)
                data.append(row[j] / norm)
            indptr.append(len(indices))
        matrix = sp.csr_matrix(
            (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int32), indptr),
            shape=(len(proposals), len(self.vocabulary_)),
        )
        return matrix, errors

    def match(
        self, proposals: Sequence[ProposalText], *, top_k: int | None = None
    ) -> list[MatchResult]:
        """Rank the programs for each proposal. See :meth:`iter_match`."""
        return list(self.iter_match(proposals, top_k=top_k))

    def iter_match(
        self,
        proposals: Iterable[ProposalText],
        *,
        top_k: int | None = None,
        chunk_size: int = 1000,
    ) -> Iterator[MatchResult]:
        """Yield one :class:`MatchResult` per proposal, in input order.

        Proposals are scored ``chunk_size`` at a time, so memory is bounded by
        ``chunk_size × n_programs`` whatever the number of proposals.

        Parameters
        ----------
        proposals : iterable of ProposalText
        top_k : int, optional
            Overrides the fitted ``top_k``.
        chunk_size : int

        Returns
        -------
        iterator of MatchResult
            Ties in score are broken by catalogue order, so results are
            deterministic.
        """
        self._check_fitted()
        k = self.top_k if top_k is None else top_k
        for chunk in proposal_chunks(proposals, chunk_size):
            yield from self._match_chunk(chunk, k)

    def _match_chunk(
        self,
        proposals: list[ProposalText],
        k: int,
        counts: Sequence[dict[str, float] | None] | None = None,
    ) -> Iterator[MatchResult]:
        queries, errors = self._proposal_vectors(proposals, counts)
        scores = (queries @ self.program_matrix_.T).toarray()
        n_programs = scores.shape[1]
        k = min(k, n_programs)
        program_order = np.arange(n_programs)
        for i, proposal in enumerate(proposals):
            if errors[i] is not None:
                yield MatchResult(proposal_id=proposal.id, no_match=True, error=errors[i])
                continue
            row = scores[i]
            # lexsort: last key is primary. Score descending, then catalogue order.
            if k < n_programs:
                candidates = np.argpartition(-row, k - 1)[:k]
                # Include every program tied with the k-th score, so the
                # tie-break below is by catalogue order, not by partition luck.
                kth = row[candidates].min()
                candidates = np.flatnonzero(row >= kth)
            else:
                candidates = program_order
            ordered = candidates[np.lexsort((candidates, -row[candidates]))][:k]
            q_start, q_end = queries.indptr[i], queries.indptr[i + 1]
            q_terms, q_weights = queries.indices[q_start:q_end], queries.data[q_start:q_end]
            matches = [
                self._explain(q_terms, q_weights, int(j), float(row[j])) for j in ordered if row[j] > 0
            ]
            best = float(row[ordered[0]]) if len(ordered) else 0.0
            yield MatchResult(
                proposal_id=proposal.id,
                no_match=best < self.no_match_threshold,
                matches=matches,
                departments=self._departments(row, k),
            )

    def is_no_match(
        self, best_lexical: float, best_semantic: float | None = None, best_exemplar: float | None = None
    ) -> bool:
        """The ``no_match`` rule on a proposal's best TF-IDF cosine (``best_semantic``
        and ``best_exemplar`` are ignored: they let callers ask either index the same way)."""
        return best_lexical < self.no_match_threshold

    def _explain(self, q_terms: np.ndarray, q_weights: np.ndarray, j: int, score: float) -> ProgramMatch:
        """The shared terms of a pair; their weights add up to ``score``.

        ``q_terms`` are the proposal's sorted feature indices, ``q_weights``
        their weights (one row of the proposal matrix).
        """
        start, end = self.program_matrix_.indptr[j], self.program_matrix_.indptr[j + 1]
        # Both index arrays are sorted and unique: intersect them in C rather
        # than walking every term of the program in Python.
        shared, in_query, in_program = np.intersect1d(
            q_terms, self.program_matrix_.indices[start:end], assume_unique=True, return_indices=True
        )
        weights = q_weights[in_query] * self.program_matrix_.data[start:end][in_program]
        fields = self.term_field_[start:end][in_program]
        # Weight descending, then term: the vocabulary is sorted, so feature
        # index order is term order.
        order = np.lexsort((shared, -weights))
        terms = [
            Term(term=t, weight=w, field=FIELDS[f])
            for t, w, f in zip(
                self.feature_names_[shared[order]].tolist(),
                weights[order].tolist(),
                fields[order].tolist(),
                strict=True,
            )
        ]
        return ProgramMatch(
            program_id=self.program_ids_[j],
            program_name=self.program_names_[j],
            department=self.program_departments_[j],
            score=score,
            terms=terms,
        )

    def _departments(self, row: np.ndarray, k: int) -> list[DepartmentScore]:
        """Departments ranked by their best program's score.

        Walking the programs from the best score down, a department's first
        appearance is its best score, so only the top of the ranking is read
        (not every program of every proposal).
        """
        positive = int(np.count_nonzero(row > 0))
        ranked: dict[str, float] = {}
        window = min(positive, max(4 * k, 32))
        while True:
            if window < len(row):
                top = np.argpartition(-row, window - 1)[:window] if window else np.array([], int)
            else:
                top = np.arange(len(row))
            order = top[np.lexsort((top, -row[top]))]
            ranked = {}
            for j in order.tolist():
                score = float(row[j])
                if score <= 0:
                    break
                for department in self.program_department_lists_[j]:
                    ranked.setdefault(department, score)
            if len(ranked) >= k or window >= positive:
                break
            window = min(positive, window * 4)
        return [DepartmentScore(department=d, score=v) for d, v in list(ranked.items())[:k]]

    # -- persistence ---------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the fitted index as ``arrays.npz`` + ``params.json`` (no pickle)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "idf": self.idf_,
            "programs_data": self.program_matrix_.data,
            "programs_indices": self.program_matrix_.indices,
            "programs_indptr": self.program_matrix_.indptr,
            "term_field": self.term_field_,
        }
        meta = {
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint_,
            "params": self._public_params(),
            "unseen_idf": self.unseen_idf_,
            "vocabulary": self.get_feature_names_out().tolist(),
            "programs": [
                {"id": i, "name": n, "department": d, "departments": ds}
                for i, n, d, ds in zip(
                    self.program_ids_,
                    self.program_names_,
                    self.program_departments_,
                    self.program_department_lists_,
                    strict=True,
                )
            ],
        }
        # Write both files under temporary names, then rename: a reader never
        # sees arrays of one fit with the params of another.
        tmp_arrays = directory / "arrays.tmp.npz"
        tmp_meta = directory / "params.tmp.json"
        np.savez(tmp_arrays, allow_pickle=False, **arrays)
        tmp_meta.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tmp_arrays.replace(directory / "arrays.npz")
        tmp_meta.replace(directory / "params.json")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ProgramIndex:
        """Read an index written by :meth:`save`."""
        directory = Path(directory)
        meta = json.loads((directory / "params.json").read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"index format {meta.get('format_version')} is not {FORMAT_VERSION}: refit it"
            )
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
