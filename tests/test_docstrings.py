"""Every public class and function of qconvert says what it is (shapes, units, errors: DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qconvert"


def _public_definitions() -> list[tuple[str, ast.AST]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(part.startswith("_") and part != "__init__.py" for part in path.relative_to(PACKAGE).parts):
            continue  # private modules
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}", node))
    return found


def test_the_walk_finds_the_public_api():
    names = {where.split()[-1] for where, _ in _public_definitions()}
    assert {"Job", "run", "convert", "convert_file", "load_inputs", "quiet_backends", "atomic_path"} <= names


def test_every_public_class_and_function_has_a_docstring():
    missing = [where for where, node in _public_definitions() if not ast.get_docstring(node)]
    assert not missing, f"{len(missing)} public definitions without a docstring:\n" + "\n".join(missing)
