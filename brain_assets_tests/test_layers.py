"""Imports run one way: no cycle between the package's modules, and no module imports from a
layer above its own. Read from the source (every import, inside functions too, except those only
for type checkers), so a lazy import cannot hide an upward dependency."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "brain_assets"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",
        (
            "errors",
            "events",
            "logs",
            "dsn",
            "environment",
            "calendar",
            "defaults",
            "bundled",
            "forkserver",
            "records",
            "provenance",
            "ranking",
            "plots",
            "alerts",
            "market_data",
            "market_data.base",
            "market_data.files",
            "market_data.synthetic",
            "market_data.sources",
            "features",
            "quality",
            "regimes",
            "evaluation",
            "lstm",
            "training",
            "decisions",
            "importance",
            "importance.analyzer",
            "importance.trend",
        ),
    ),
    ("store", ("store",)),
    (
        "lifecycle",
        (
            "lifecycle",
            "market_data.store_source",
            "market_data.store_import",
            "market_data.exchange",
            "market_data.deployment",
        ),
    ),
    ("library", ("library",)),
    ("pipeline", ("pipeline", "importance.nightly", "replay")),
    ("defs", ("defs", "definitions")),
    ("cli", ("cli",)),
)
"""Lowest first; a module belongs to the layer of its longest matching name."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    best, level = -1, -1
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, level = len(name), index
    assert level >= 0, f"brain_assets.{module} is in no layer: add it to LAYERS"
    return level


def _known(dotted: str) -> str | None:
    """The package module ``dotted`` (``brain_assets.x.y.name``) names, or None."""
    name = dotted.removeprefix("brain_assets").lstrip(".")
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(child) for child in ast.walk(node))
    return hidden


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """(imported package module, line) for every runtime import in ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    hidden = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from package import module`` runs the package's __init__ too: both count.
            targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        for target in targets:
            if target.split(".")[0] != "brain_assets":
                continue
            found = _known(target)
            if found is not None and found != module and found != "":
                yield found, node.lineno


GRAPH = {module: sorted({found for found, _ in imports_of(module)}) for module in MODULES}


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = [
        f"brain_assets.{module} ({LAYERS[layer_of(module)][0]}) imports brain_assets.{found} "
        f"({LAYERS[layer_of(found)][0]}) on line {line}"
        for module in sorted(MODULES)
        if module
        for found, line in imports_of(module)
        if layer_of(found) > layer_of(module)
    ]
    assert upward == []


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in GRAPH.get(node, []):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle() -> None:
    assert _cycles() == []


def test_the_checks_see_what_they_forbid() -> None:
    # The graph is read from the code: the store's modules import each other, the CLI imports
    # the store, and a made-up cycle is found.
    assert "store.base" in GRAPH["store.library"] or "store.registry" in GRAPH["store.library"]
    assert layer_of("cli.main") > layer_of("store.registry") > layer_of("errors")
    saved = dict(GRAPH)
    try:
        GRAPH["errors"] = ["events"]
        GRAPH["events"] = ["errors"]
        assert ["errors", "events"] in _cycles()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
