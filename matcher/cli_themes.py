"""``kyodo themes``: the proposals of a file grouped into themes, from the
command line, with no database (the same clustering as the dashboard's)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from matcher.cli import (
    _load_programs,
    mode_option,
    programs_option,
    proposals_option,
    read_proposals,
)
from matcher.indexes import make_index
from matcher.related import build_space, pair_graph
from matcher.semantic import resolve_mode
from matcher.themes import Theme, shared_programs, themes_in
from matcher.tokenize import default_jobs


@click.command("themes")
@proposals_option
@programs_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "table"]), default="jsonl", show_default=True)
@mode_option
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="Average pair score (standard deviations) at which two themes join; default: the mode's, "
    "chosen on the dev split (docs/quality.md). Higher: more, smaller themes.",
)
@click.option("--jobs", default=0, show_default=True, type=click.IntRange(0, 64),
              help="Cores to use for a large file: processes tokenize, threads score the pairs "
              "(0: one per core up to 8, as kyodo match; 1: one).")
def themes_command(
    proposals_path: Path, programs_path: Path | None, fmt: str, mode: str | None, threshold: float | None, jobs: int
) -> None:
    """Group the proposals of a file into themes, each with a short label.

    Prints one JSON object per theme and line: {"theme": N, "label": TEXT,
    "proposal_ids": [...]}, largest theme first; every proposal is in
    exactly one theme (a theme of one is fine; a proposal that cannot be
    read is a theme of its own, label ""). With --programs, each line also
    has "programs": the programs in the first three of more than half of the
    theme's proposals. Themes use the engine of program matching on the
    proposals themselves (TF-IDF, fused with e5 in semantic mode).
    """
    resolved, embedder, note = resolve_mode(mode)
    if note:
        click.echo(note, err=True)
    proposals = [p for p, _ in read_proposals(proposals_path)]
    n_jobs = default_jobs(jobs)
    try:
        space = build_space(proposals, mode=resolved, embedder=embedder, n_jobs=n_jobs)
    except ValueError as exc:
        raise click.ClickException(f"{proposals_path.name}: {exc}") from exc
    found = themes_in(space, threshold=threshold, graph=pair_graph(space, threads=n_jobs))
    shared: dict[int, list[str]] | None = None
    if programs_path is not None:
        programs = _load_programs(programs_path)
        index = make_index(mode=resolved, embedder=embedder, top_k=3, n_jobs=n_jobs)
        shared = shared_programs(found, {r.proposal_id: r for r in index.fit_match(programs, proposals)})
    titles = {p.id: p.title for p in proposals}
    lines = [_line(t, shared) for t in found] if fmt == "jsonl" else [_table(t, titles, shared) for t in found]
    click.echo("\n".join(lines))


def _line(theme: Theme, shared: dict[int, list[str]] | None) -> str:
    data: dict[str, object] = {"theme": theme.theme, "label": theme.label, "proposal_ids": list(theme.proposal_ids)}
    if shared is not None:
        data["programs"] = shared[theme.theme]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _table(theme: Theme, titles: dict[str, str], shared: dict[int, list[str]] | None) -> str:
    lines = [f"■ テーマ {theme.theme}  {theme.label or '（ラベルなし）'}（{len(theme.proposal_ids)}件）"]
    lines += [f"  - {pid}  {titles.get(pid, '')}" for pid in theme.proposal_ids]
    if shared is not None:
        lines.append("  共通の事業: " + ("、".join(shared[theme.theme]) or "なし"))
    return "\n".join(lines)
