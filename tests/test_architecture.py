"""The package's layering, checked from the source: data flows top to bottom, imports point down.

Layers (a module may import its own package and the layers below, never a layer above):

    0  errors, config, io, plotting          (shared conventions)
    1  models                                 (layers, plans, accounting, loading)
    2  data                                   (benchmarks, mixtures, prompts, tokenisation)
    3  identify | train | evaluate            (independent of each other)
    4  synth                                  (the demo runs all of the above)
    5  cli, __main__                          (the command line)

and no import cycle between modules, counting imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "slam_align"
LAYER = {
    "slam_align": 0,
    "errors": 0,
    "config": 0,
    "io": 0,
    "plotting": 0,
    "models": 1,
    "data": 2,
    "identify": 3,
    "train": 3,
    "evaluate": 3,
    "synth": 4,
    "cli": 5,
    "__main__": 5,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    """slam_align modules imported anywhere in the file (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("slam_align")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("slam_align"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # "from pkg import module"
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYER[parts[1]] if len(parts) > 1 else LAYER["slam_align"]


def _package(module: str) -> str:
    """``models`` for slam_align.models and its modules; "" for top-level modules (io, cli...)."""
    parts = module.split(".")
    if len(parts) < 2 or (PACKAGE / parts[1]).is_file() or not (PACKAGE / parts[1]).is_dir():
        return ""
    return parts[1]


def test_every_module_has_a_layer():
    assert all(m.split(".")[1] in LAYER for m in _modules() if "." in m)


def test_imports_point_down():
    wrong = []
    for module, imported in _graph().items():
        for other in imported:
            same_package = _package(module) and _package(module) == _package(other)
            if other == "slam_align" or same_package:
                continue
            if _layer(other) > _layer(module) or (
                _layer(other) == _layer(module)
                and _layer(module) == 3
                and _package(other) != _package(module)
            ):
                wrong.append(f"{module} imports {other}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_the_check_catches_a_violation(tmp_path, monkeypatch):
    """The checks above can fail: a models module importing train is reported."""
    fake = tmp_path / "slam_align"
    (fake / "models").mkdir(parents=True)
    (fake / "train").mkdir()
    for d in (fake, fake / "models", fake / "train"):
        (d / "__init__.py").write_text("")
    (fake / "models" / "bad.py").write_text("from slam_align.train.good import x\n")
    (fake / "train" / "good.py").write_text("import slam_align.models.bad\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    try:
        test_imports_point_down()
    except AssertionError as e:
        assert "slam_align.models.bad imports slam_align.train.good" in str(e)
    else:
        raise AssertionError("the layering check missed models -> train")
    try:
        test_no_import_cycle()
    except AssertionError as e:
        assert "import cycle" in str(e)
    else:
        raise AssertionError("the cycle check missed models.bad <-> train.good")
