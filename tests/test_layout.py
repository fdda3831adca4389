"""The layout docs/architecture.md promises, checked: imports point one way, no import
hides a cycle, and every module and function stays small enough to hold in one's head."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import REPO_ROOT

BOT = REPO_ROOT / "bot"

#: the layers of docs/architecture.md, top (entry points) to bottom (vocabulary); a module
#: may import from its own layer and the layers below it, never above
LAYERS: dict[str, int] = {
    "bot.app": 0,
    "bot.serve": 0,
    "bot.cli": 0,
    "bot.worker": 0,
    "bot.worker_processes": 0,
    "bot.web": 0,
    "bot.governor": 1,
    "bot.simulate": 1,
    "bot.forges": 2,
    "bot.slack": 2,
    "bot.approvals": 2,
    "bot.store": 2,
    "bot.inbox": 2,
    "bot.redelivery": 2,
    "bot.audit": 2,
    "bot.pages": 2,
    "bot.setup": 2,
    "bot.report": 2,
    "bot.policy": 3,
    "bot.rules": 3,
    "bot.formats": 3,
    "bot.views": 3,
    "bot.metrics": 3,
    "bot.change": 4,
    "bot.settings": 4,
    "bot.durations": 4,
}

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 6


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(BOT.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def layer_of(module: str) -> int:
    owners = [key for key in LAYERS if module == key or module.startswith(key + ".")]
    assert owners, f"{module} is in no layer of docs/architecture.md: add it to LAYERS"
    return LAYERS[max(owners, key=len)]


def imported(tree: ast.Module) -> Iterator[tuple[str, ast.stmt]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node


def test_every_module_is_in_a_layer() -> None:
    for name, _ in modules():
        if name != "bot":
            layer_of(name)


def test_imports_point_down() -> None:
    upward = []
    for name, path in modules():
        if name == "bot":
            continue
        mine = layer_of(name)
        for target, node in imported(ast.parse(path.read_text())):
            if target.startswith("bot.") and layer_of(target) < mine:
                upward.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} imports {target}")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules its module-level statements import (`from bot.x import
    y` counts as importing `bot.x.y` when that is a module)."""
    names = {name: path for name, path in modules()}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        edges = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if sub in names else node.module)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {edge for edge in edges if edge in names and edge != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    """A cycle between modules of one layer works only when a third module happens to be
    imported first; `python -c "import bot.rules.conditions"` once failed that way."""
    assert not cycles(import_graph())


def test_the_cycle_check_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_is_hidden_from_the_import_graph() -> None:
    """`TYPE_CHECKING` blocks and imports inside functions are how a cycle gets hidden. The
    CLI is the one exception: it imports a command's modules when the command runs, so that
    `changegate --help` stays fast, and those imports point down like any other."""
    hidden = []
    for name, path in modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                hidden.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} TYPE_CHECKING")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not name.startswith(
                "bot.cli"
            ):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom) and _is_project(inner):
                        where = f"{path.relative_to(REPO_ROOT)}:{inner.lineno}"
                        hidden.append(f"{where} imports inside {node.name}()")
    assert not hidden, "\n".join(hidden)


def _is_project(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "bot"
    return any(alias.name.split(".")[0] == "bot" for alias in node.names)


@pytest.mark.parametrize("limit", [MAX_MODULE_LINES])
def test_modules_fit_in_a_head(limit: int) -> None:
    big = []
    for _, path in modules():
        lines = len(path.read_text().splitlines())
        if lines > limit:
            big.append(f"{path.relative_to(REPO_ROOT)}: {lines} lines")
    assert not big, "\n".join(big)


def test_functions_are_short_and_take_few_parameters() -> None:
    long = []
    for _, path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            where = f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name}()"
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                long.append(f"{where}: {length} lines")
            args = node.args
            names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
            count = len([n for n in names if n not in ("self", "cls")])
            if count > MAX_PARAMETERS:
                long.append(f"{where}: {count} parameters")
    assert not long, "\n".join(long)
