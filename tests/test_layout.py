"""The layout's rules, checked on the code itself (docs/architecture.md):
imports run one way, modules and functions stay small, no block is worse
than radon's grade C."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from radon.complexity import cc_rank, cc_visit

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("corpus", "matcher", "models", "office", "web")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 50
# What each package may import of ours: web → office → models / matcher → corpus.
ALLOWED = {
    "corpus": {"corpus"},
    "matcher": {"matcher", "corpus"},
    "models": {"models", "corpus"},
    "office": {"office", "models", "matcher", "corpus"},
    "web": {"web", "office", "models", "matcher", "corpus"},
}


def modules() -> list[Path]:
    return sorted(
        path for package in PACKAGES for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts
    )


def imported_packages(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(PACKAGES)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_follows_the_layout(path: Path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    package = path.relative_to(ROOT).parts[0]
    assert imported_packages(tree) <= ALLOWED[package], f"{package} may import only {sorted(ALLOWED[package])}"
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES  # type: ignore[operator]
    ]
    assert long == []
    complex_blocks = [f"{block.name} ({cc_rank(block.complexity)})" for block in cc_visit(source)
                      if cc_rank(block.complexity) not in "ABC"]
    assert complex_blocks == []


def test_the_layout_check_sees_every_package():
    assert {p.relative_to(ROOT).parts[0] for p in modules()} == set(PACKAGES)
    assert imported_packages(ast.parse("from models.tables import Program\nimport matcher.index")) == {"models", "matcher"}


def test_the_map_names_what_the_code_has():
    """Every dotted name in docs/architecture.md (``office.commands.decide``) exists."""
    import importlib
    import re

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    names = set(re.findall(r"`((?:corpus|matcher|models|office|web)\.[A-Za-z_][\w.]*)`", text))
    assert len(names) > 20
    missing = []
    for name in sorted(names):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                target: object = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                target = getattr(target, attribute, None)
            if target is None:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert missing == []
