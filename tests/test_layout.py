"""The package layout is the architecture: imports run one way, tools → engine → layers → parts → config → catalogue."""

from __future__ import annotations

import ast
from pathlib import Path

MODULES = Path(__file__).resolve().parent.parent / "modules"
# Higher rank may import lower or equal rank, never higher. rehearsal is a tool.
RANK = {"catalogue": -1, "config": 0, "parts": 1, "layers": 2, "engine": 3, "tools": 4, "rehearsal": 4}


def _imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def _package(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "modules" and parts[1] in RANK else None


def test_every_module_lives_in_a_package():
    loose = sorted(p.name for p in MODULES.iterdir() if p.is_file() and p.name != "__init__.py")
    assert loose == [], f"modules/ holds only packages; move {loose} into one of {sorted(RANK)}"
    assert sorted(p.name for p in MODULES.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(RANK)


def test_imports_run_one_way():
    upward = []
    for path in sorted(MODULES.rglob("*.py")):
        own = path.relative_to(MODULES).parts[0]
        if own not in RANK:
            continue
        for name in _imported(ast.parse(path.read_text())):
            target = _package(name)
            if target is not None and RANK[target] > RANK[own]:
                upward.append(f"{path.relative_to(MODULES.parent)} imports {name}")
    assert upward == [], "imports must run tools → engine → layers → parts → config → catalogue:\n" + "\n".join(upward)


MAX_LINES = 60  # a method longer than this is a story that needs named steps


def test_no_method_is_long():
    long = []
    for path in sorted(MODULES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = f"{path.relative_to(MODULES.parent).as_posix()}:{node.name}"
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{where} ({lines} lines)")
    assert long == [], "split into named steps: " + ", ".join(long)
