"""``kyodo match`` and ``kyodo evaluate``: the matcher from the command line,
on files, with no database."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from corpus import (
    FileFormatError,
    InvalidRowsError,
    ProgramRecord,
    load_keywords,
    load_programs,
    read_rows,
    with_keywords,
)
from corpus.departments import DepartmentDuty, load_department_duties
from matcher.counting import Counted
from matcher.duties import with_duties
from matcher.evaluate import GoldProposal, evaluate_by_kind
from matcher.explain import SHOWN_KINDS
from matcher.index import ProposalText
from matcher.indexes import make_index
from matcher.related_match import related_by_position, with_related_beside
from matcher.results import FIELD_LABELS, MatchResult
from matcher.semantic import MODES, Exemplar, resolve_mode
from matcher.tokenize import default_jobs

if TYPE_CHECKING:
    from matcher.embedder import Embedder


def _load_programs(path: Path | None, keywords_path: Path | None = None) -> list[ProgramRecord]:
    try:
        programs = load_programs(path)
        return with_keywords(programs, load_keywords(keywords_path)) if keywords_path else programs
    except InvalidRowsError as exc:
        raise click.ClickException(str(exc.errors[0]) + (
            f" (and {len(exc.errors) - 1} more bad rows)" if len(exc.errors) > 1 else ""
        )) from exc
    except FileFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:  # keywords for an id the programs do not have
        raise click.ClickException(f"{keywords_path}: {exc}") from exc


def read_proposals(path: Path) -> list[tuple[ProposalText, dict[str, object]]]:
    """Proposals of a JSONL or CSV file with ``id, title, body``, and each raw row.

    A file-level problem raises ClickException (one line naming the file);
    a bad record is left to the matcher, which reports it for that record.
    """
    try:
        rows = list(read_rows(path))
        if not any("body" in row.values for row in rows):
            raise FileFormatError(path, "missing required column body")
    except FileFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    proposals = []
    for row in rows:
        values = row.values
        proposal_id = str(values.get("id") or f"line-{row.line}")
        title = values.get("title") or ""
        body = values.get("body") or ""
        proposals.append(
            (ProposalText(proposal_id, str(title), str(body) if isinstance(body, str) else ""), values)
        )
    return proposals


mode_option = click.option(
    "--mode",
    type=click.Choice(MODES),
    default=None,
    help="lexical: TF-IDF alone; semantic: TF-IDF fused with e5 embeddings "
    "(needs the extra kyodo-match[semantic]). Default: semantic when the extra "
    "is installed and its model verifies, else lexical, and the output says so.",
)


programs_option = click.option(
    "--programs",
    "programs_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Programs file: CSV (UTF-8, BOM or cp932), XLSX or JSONL. Default: the bundled corpus.",
)


keywords_option = click.option(
    "--keywords",
    "keywords_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The coordinator's keywords (キーワード) of the programs: a file with the columns id and キーワード "
    "(CSV, XLSX or JSONL), for programs whose file has no キーワード column.",
)


exemplars_option = click.option(
    "--exemplars",
    "exemplars_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help='Accepted pairings (semantic mode): JSONL like kyodo evaluate --gold, whose "gold" names the '
    "programs each proposal was accepted for. A proposal is never compared with itself.",
)


def _exemplars_note(note: str | None, exemplars_path: Path | None, resolved: str) -> str | None:
    """The engine's note, plus a word when --exemplars cannot be used."""
    if exemplars_path and resolved != "semantic":
        return f"{note or 'lexical mode'}; --exemplars needs the semantic layer and is ignored"
    return note


proposals_option = click.option(
    "--proposals",
    "proposals_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Proposals file: JSONL or CSV with id, title, body.",
)


@click.command("match")
@programs_option
@keywords_option
@proposals_option
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "table"]), default="jsonl", show_default=True)
@mode_option
@exemplars_option
@click.option(
    "--jobs",
    default=0,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Cores to use for a large file: processes tokenize, threads score the related proposals beside the "
    "ranking (0: one per core, up to 8; 1: one process, one thread of ours).",
)
@click.option(
    "--departments",
    "departments_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Department directory: CSV or XLSX with 担当課, 部, 所掌事務. Departments are then ranked by their "
    'duties as well as through their programs; each entry of "departments" says which ("source").',
)
@click.option("--related", "related_k", default=5, show_default=True, type=click.IntRange(0, 100),
              help='Other proposals of the file listed in each line\'s "related", most alike first (0: none, and no cost).')
def match_command(
    programs_path: Path | None,
    keywords_path: Path | None,
    proposals_path: Path,
    top_k: int,
    fmt: str,
    mode: str | None,
    exemplars_path: Path | None,
    jobs: int,
    departments_path: Path | None = None,
    related_k: int = 5,
) -> None:
    """Rank the city's programs for every proposal of a file, with the reasons.

    Prints one JSON object per proposal and line (or a table for a person).
    A bad record (empty body, too long, control characters) gets an "error"
    in its line; the other records still come out. In semantic mode each
    match also has lexical_score, semantic_score and carried_by, and score
    is the fused score; with --exemplars, also "exemplar" (the nearest
    accepted proposal) where the program has one. Each line also has
    "related": the file's other proposals most like this one ({"proposal_id",
    "score"}, the score of kyodo themes).
    """
    resolved, embedder, note = resolve_mode(mode)
    note = _exemplars_note(note, exemplars_path, resolved)
    if note:
        click.echo(note, err=True)
    programs = _load_programs(programs_path, keywords_path)
    proposals = [p for p, _ in read_proposals(proposals_path)]
    n_jobs = default_jobs(jobs)
    # With the related proposals scored in a thread beside the ranking, the
    # fit tokenizes the programs in this process: no fork while a thread runs.
    index = make_index(mode=resolved, embedder=embedder, top_k=top_k, n_jobs=1 if related_k else n_jobs)
    # Exemplars need the semantic layer (the note above says they are ignored).
    use_exemplars = exemplars_path is not None and resolved == "semantic"
    accepted = _resolve_gold(read_gold(exemplars_path), programs) if use_exemplars and exemplars_path else []
    exemplars = [Exemplar(g, a.proposal) for a in accepted for g in a.gold]
    # Counted once: the ranking and the related proposals read the same counts.
    counted = index.count_proposals(proposals, n_jobs=n_jobs)
    results = index.fit_match(programs, proposals, exemplars=exemplars, counted=counted)
    if departments_path is not None:
        directory = _load_directory(departments_path)
        duty_index = make_index(mode=resolved, embedder=embedder, top_k=top_k)
        results = iter(with_duties(list(results), proposals, duty_index, directory, k=top_k))
    # Issue 15: each line also names the file's proposals most like this one.
    if related_k:
        results = _with_related(results, proposals, counted, resolved, embedder, related_k, n_jobs)
    write_results(results, fmt)


def _with_related(
    results: Iterable[MatchResult], proposals: list[ProposalText], counted: Counted, mode: str,
    embedder: Embedder | None, k: int, n_jobs: int,
) -> Iterator[MatchResult]:
    """The results with their related proposals: beside the ranking when there is more than
    one core (see with_related_beside); in semantic mode once the ranking has embedded the
    proposals, which the related step reuses."""
    return with_related_beside(results, lambda: related_by_position(
        proposals, mode=mode, embedder=embedder, k=k, counted=counted, n_jobs=n_jobs
    ), overlap=n_jobs > 1, rank_first=mode == "semantic")


def _load_directory(path: Path) -> list[DepartmentDuty]:
    try:
        return load_department_duties(path)
    except FileFormatError as exc:
        raise click.ClickException(str(exc)) from exc


# Lines written at once: one write per thousand results, not per line.
_WRITE_BATCH = 1000


def write_results(results: Iterable[MatchResult], fmt: str) -> None:
    """One compact JSON object per line (or a table), in batches of lines.

    Iterating ``results`` runs the batch (fit, then match a chunk at a
    time). The cyclic garbage collector is off meanwhile: the batch makes
    millions of small acyclic objects (term counts, explanations, the JSON
    dicts), which refcounting frees, and each collection would walk them
    (about 4 % of the CPU time at 5,000 × 500, see docs/benchmarks.md).
    """
    # No circular check: the dicts are fresh trees, and the check costs 15 % of the encoding.
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
    render = (lambda r: encode(r.to_dict())) if fmt == "jsonl" else format_table
    lines: list[str] = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for result in results:
            lines.append(render(result))
            if len(lines) >= _WRITE_BATCH:
                click.echo("\n".join(lines))
                lines.clear()
    finally:
        if was_enabled:
            gc.enable()
    if lines:
        click.echo("\n".join(lines))


def format_table(result: MatchResult) -> str:
    lines = [f"■ {result.proposal_id}" + ("  [該当なし no_match]" if result.no_match else "")]
    if result.error:
        lines.append(f"  error: {result.error}")
    for rank, match in enumerate(result.matches, start=1):
        # What a person is shown: the proposal's words, no kanji features.
        words = [t for t in match.terms if t.kind in SHOWN_KINDS]
        terms = "、".join(f"{t.term}({FIELD_LABELS[t.field]})" for t in words)
        lines.append(
            f"  {rank}. {match.score:.3f}  {match.program_id} {match.program_name}"
            f"  [{match.department or '担当課未記載'}]"
        )
        if match.semantic_score is not None:
            label = {"semantic": "  意味的に近い", "exemplar": f"  採用済みの提案 {match.exemplar_id} に近い"}.get(
                match.carried_by or "", ""
            )
            lines.append(
                f"       TF-IDF {match.lexical_score or 0.0:.3f} / e5 {match.semantic_score:.3f}{label}"
            )
        if terms:
            lines.append(f"       共通語: {terms}")
    if result.departments:
        lines.append(
            "  担当課: " + "、".join(f"{d.department} {d.score:.3f}" for d in result.departments)
        )
    return "\n".join(lines)


def read_gold(path: Path) -> list[GoldProposal]:
    items = []
    for proposal, values in read_proposals(path):
        gold = values.get("gold")
        if isinstance(gold, str):
            gold = [g for g in gold.replace("、", ",").split(",") if g.strip()]
        if not isinstance(gold, list):
            raise click.ClickException(f"{path.name}: record {proposal.id} has no \"gold\" list")
        kind = str(values.get("kind") or "")
        items.append(GoldProposal(proposal, tuple(str(g).strip() for g in gold), kind))
    return items


def _resolve_gold(items: list[GoldProposal], programs: list[ProgramRecord]) -> list[GoldProposal]:
    """Gold may name programs by id or by 事業名."""
    by_name = {p.name: p.id for p in programs}
    ids = {p.id for p in programs}
    resolved = []
    for item in items:
        gold = []
        for g in item.gold:
            if g in ids:
                gold.append(g)
            elif g in by_name:
                gold.append(by_name[g])
            else:
                raise click.ClickException(f"gold program {g!r} of {item.proposal.id} is not in the catalogue")
        resolved.append(GoldProposal(item.proposal, tuple(gold), item.kind))
    return resolved


@click.command("evaluate")
@programs_option
@keywords_option
@click.option(
    "--gold",
    "gold_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help='JSONL: proposals with "gold": [program ids or names] ([] = nothing fits).',
)
@click.option(
    "--real",
    "real_path",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The real-world benchmark folder (tests/data/realworld): department-family hit@1 / hit@3 of real "
    "proposals by split, through programs, by the directory's duties, and both.",
)
@exemplars_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@mode_option
def evaluate_command(
    programs_path: Path | None,
    keywords_path: Path | None,
    gold_path: Path | None,
    exemplars_path: Path | None,
    fmt: str,
    mode: str | None,
    real_path: Path | None = None,
) -> None:
    """Measure ranking quality on proposals with known partners.

    Prints hit@1, hit@3 and MRR on in-scope proposals, the share of
    out-of-scope proposals flagged no_match and of in-scope ones wrongly
    flagged, for kyodo-match and two baselines run on the same data; in
    semantic mode also e5 alone and kyodo-match fused with e5, side by side.
    When records carry a "kind" (e.g. ordinary / paraphrase), each kind is
    also reported on its own. With --exemplars, also the fused ranking
    that reads the accepted pairings they stand for.
    """
    if gold_path is None and real_path is None:
        raise click.UsageError("give --gold FILE, --real DIR or both")
    resolved, embedder, note = resolve_mode(mode)
    if real_path is not None:
        click.echo(_evaluate_real(real_path, resolved, embedder, note, fmt))
    if gold_path is None:
        return
    note = _exemplars_note(note, exemplars_path, resolved)
    programs = _load_programs(programs_path, keywords_path)
    items = _resolve_gold(read_gold(gold_path), programs)
    exemplars = _resolve_gold(read_gold(exemplars_path), programs) if exemplars_path else []
    results = evaluate_by_kind(programs, items, embedder=embedder, exemplars=exemplars)
    if fmt == "json":
        payload: dict[str, object] = {k: v.as_dict() for k, v in results["all"].items()}
        if note:
            payload["note"] = note
        if len(results) > 1:
            payload["by_kind"] = {
                kind: {k: v.as_dict() for k, v in metrics.items()}
                for kind, metrics in results.items()
                if kind != "all"
            }
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    blocks = [f"engine: {note}"] if note else []
    for kind, metrics in results.items():
        heading = "" if kind == "all" else f"\n[{kind}]\n"
        blocks.append(heading + format_metrics(metrics))
    click.echo("\n".join(blocks))


def format_metrics(results: dict) -> str:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    first = next(iter(results.values()))
    rows = [
        f"in-scope proposals: {first.n_in_scope}, out-of-scope: {first.n_out_of_scope}",
        f"{'method':<30}{'hit@1':>8}{'hit@3':>8}{'MRR':>8}{'OOS flagged':>13}{'in-scope flagged':>18}",
    ]
    for name, m in results.items():
        rows.append(
            f"{name:<30}{m.hit_at_1:>8.3f}{m.hit_at_3:>8.3f}{m.mrr:>8.3f}"
            f"{pct(m.out_of_scope_flagged):>13}{pct(m.in_scope_flagged):>18}"
        )
    for name, m in results.items():
        if m.confidence:
            rows.append(f"confidence of {name}: level, in-scope in it, its first right, out-of-scope in it")
            rows.extend(
                f"  {level:<8}{pct(r['in_scope']):>8}{pct(r['first_right']):>8}{pct(r['out_of_scope']):>8}"
                for level, r in m.confidence.items()
            )
    return "\n".join(rows)


def _evaluate_real(folder: Path, mode: str, embedder: object, note: str | None, fmt: str) -> str:
    from matcher.realworld import evaluate_split, load_benchmark

    try:
        bench = load_benchmark(folder)
    except (OSError, KeyError, ValueError, FileFormatError) as exc:
        raise click.ClickException(f"{folder}: {exc}") from exc
    splits = sorted({p.split for p in bench.proposals})
    found = {s: evaluate_split(bench, s, lambda: make_index(mode=mode, embedder=embedder)) for s in splits}  # type: ignore[arg-type]
    if fmt == "json":
        return json.dumps({s: {m: v.__dict__ for m, v in r.items()} for s, r in found.items()}, ensure_ascii=False)
    rows = [f"engine: {note}"] if note else []
    for split, metrics in found.items():
        first = next(iter(metrics.values()))
        rows.append(f"[real, {split}] proposals: {first.n}; department family")
        rows.append(f"{'method':<30}{'hit@1':>8}{'hit@3':>8}")
        rows.extend(f"{name:<30}{m.hit_at_1:>8.3f}{m.hit_at_3:>8.3f}" for name, m in metrics.items())
    return "\n".join(rows)
