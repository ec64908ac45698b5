"""The house's rules, read from the source: imports run one way between the rooms (commands ->
study -> training -> inference -> tracking / evaluation -> models / data / hardware -> options ->
errors), with no circle; inference needs no Optuna, Lightning or training code; importing a module changes no global state;
benchmarks never borrow from tests."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ferlight"
COMMANDS = {"fit", "evaluate", "sweep", "live", "__main__"}
# Rooms by level: a room may import its own level's room and the levels below it.
LEVELS = {
    "errors": 0, "atomic": 0, "options": 1,
    "models": 2, "data": 2, "hardware": 2, "weights": 2,
    "tracking": 3, "evaluation": 3,
    "inference": 4,
    "training": 5, "study": 5,
    "testing": 6, **{name: 7 for name in COMMANDS},
}
SIDEWAYS = {("study", "training"), ("hardware", "data")}  # a study runs fits; the cache folder is data's


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, module: str, top_level_only: bool = False) -> set[str]:
    """ferlight modules (and other top-level packages) that ``path`` imports."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    known = modules()
    return {name for name in names if not name.startswith("ferlight") or name in known}


def ferlight_imports(path, module, top_level_only=False) -> set[str]:
    return {name for name in imports(path, module, top_level_only) if name.startswith("ferlight.")}


@pytest.mark.parametrize("module,path", sorted(modules().items()), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_point_down(module, path):
    source = room(module)
    if source not in LEVELS:  # the package's own __init__
        return
    for target in ferlight_imports(path, module):
        to = room(target)
        allowed = to == source or LEVELS[to] < LEVELS[source] or (source, to) in SIDEWAYS
        assert allowed and to not in COMMANDS, f"{module} imports {target}"


def test_no_import_circle():
    graph = {m: {t for t in ferlight_imports(p, m, top_level_only=True) if t != m} for m, p in modules().items()}
    graph = {m: {t for t in targets if t in graph and not m.startswith(t + ".")} for m, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_models_need_torch_alone_and_inference_needs_no_training():
    for module, path in modules().items():
        third_party = {name.split(".")[0] for name in imports(path, module)} - {"ferlight", "__future__"}
        if room(module) == "models":
            assert third_party <= {"torch", "collections", "dataclasses", "inspect", "typing", "math"}, module
        if room(module) == "inference":
            assert not third_party & {"optuna", "lightning"}, module
            assert not {t for t in ferlight_imports(path, module) if room(t) in ("training", "study")}, module


def test_no_module_changes_global_state_on_import():
    for module, path in modules().items():
        text = path.read_text()
        assert "matplotlib.use(" not in text and "logging.basicConfig(" not in text, module


def test_benchmarks_never_borrow_from_tests():
    for path in (ROOT / "bench").rglob("*"):
        if path.suffix in (".py", ".sh"):
            code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
            assert not any(re.search(r"\btests\b", line) for line in code if "sys.path" in line or "/" in line), path
