"""The code's shape that issue 16 settled: SQL only in the store, policy without a database
driver, and every public name and path the documentation gives still where it says."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import brain_assets

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "brain_assets"
DOCS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "deploy").rglob("README.md")),
]
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TEMP\s+)?TABLE|"
    r"pg_advisory)",
    re.IGNORECASE | re.DOTALL,
)
POLICY_MODULES = ("lifecycle/versioning.py", "lifecycle/selection.py", "alerts.py")


def string_constants(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


def test_only_the_store_holds_sql() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): text[:60]
        for path in PACKAGE.rglob("*.py")
        if "store" not in path.relative_to(PACKAGE).parts
        for text in string_constants(path)
        if SQL.search(text)
    }
    assert offenders == {}


@pytest.mark.parametrize("module", POLICY_MODULES)
def test_policy_modules_import_no_database_driver(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "psycopg"]


def test_every_exported_name_imports() -> None:
    for name in brain_assets.__all__:
        assert getattr(brain_assets, name) is not None, name


def test_documented_imports_and_paths_exist() -> None:
    checked = 0
    for doc in DOCS:
        text = doc.read_text()
        for line in re.findall(r"^(?:from brain_assets[\w.]* import [\w, ]+|import brain_assets)$",
                               text, re.MULTILINE):  # fmt: skip
            exec(line, {})  # a line of our own README
            checked += 1
        for path in re.findall(r"`(brain_assets(?:_tests)?/[\w/.]*)`", text):
            assert (REPO / path).exists(), f"{doc.name} names {path}, which does not exist"
            checked += 1
        for dotted in re.findall(r"`(brain_assets(?:\.\w+)+)`", text):
            module, _, attribute = dotted.rpartition(".")
            try:
                importlib.import_module(dotted)
            except ModuleNotFoundError:
                assert hasattr(importlib.import_module(module), attribute), dotted
            checked += 1
    assert checked >= 10


MAX_FUNCTION_LINES = 80


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name (n lines)`` for every function under ``root`` longer than ``limit``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length})")
    return found


def test_every_function_fits_on_a_screen(tmp_path: Path) -> None:
    assert long_functions(PACKAGE) == []
    # The check finds a long one.
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def step():\n{body}")
    assert long_functions(tmp_path) == [f"long.py:1 step ({MAX_FUNCTION_LINES + 1})"]
