"""The package's import graph: imports run one way, boxes -> ... -> cli, and no module-level cycle.

Layers, lowest first (a module may import its own layer and those below it, never above):
registry/config, boxes, prompts, models, datasets, tasks, infer/eval, tiny, train/plan, demo,
sweep, commands, cli. ``prompts`` sits below ``models`` because the ms-swift plugin
(``models/swift_plugin.py``) draws the visual prompt, and the prompts need nothing from models.
The test reads the source (``ast``), so it sees imports inside functions too.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vptracker"
LAYERS = (("registry", "config"), ("boxes",), ("prompts",), ("models",), ("datasets",), ("tasks",),
          ("infer", "eval"), ("tiny",), ("train", "plan"), ("demo",), ("sweep",), ("commands",),
          ("cli", "__main__", "__init__"))
RANK = {name: i for i, group in enumerate(LAYERS) for name in group}
# Arrows that still run the wrong way, each with why it is there; the list only shrinks.
KNOWN: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports() -> list[tuple[str, str, bool]]:
    """(importer, imported module, at module level) for every import of a vptracker module."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    out = []
    for name, path in modules.items():
        def visit(node, top):
            for child in ast.iter_child_nodes(node):
                inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                targets = []
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                    # `from pkg import sub` reads the module pkg.sub; `from pkg import name`, pkg's __init__
                    subs = [f"{child.module}.{a.name}" for a in child.names if f"{child.module}.{a.name}" in modules]
                    targets = subs + ([child.module] if len(subs) < len(child.names) else [])
                out.extend((name, t, top) for t in targets if t in modules)
                visit(child, inner)
        visit(ast.parse(path.read_text()), True)
    return out


def test_every_layer_is_named():
    assert {layer(module_name(p)) for p in PACKAGE.rglob("*.py")} <= set(RANK)


def test_imports_run_one_way():
    wrong = sorted({(a, b) for a, b, _ in imports() if RANK[layer(a)] < RANK[layer(b)]})
    new = [f"{a} -> {b}" for a, b in wrong if (a, b) not in KNOWN]
    assert not new, "imports against the layer order:\n" + "\n".join(new)
    gone = KNOWN - set(wrong)
    assert not gone, f"no longer imported, remove from KNOWN: {sorted(gone)}"


def test_no_cycle_at_module_level():
    graph: dict[str, set[str]] = {}
    for a, b, top in imports():
        if top and a != b:
            graph.setdefault(a, set()).add(b)
    done, stack, cycles = set(), [], []

    def walk(node, on_path):
        if node in on_path:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        on_path.add(node)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            walk(nxt, on_path)
        stack.pop()
        on_path.discard(node)
        done.add(node)

    for start in sorted(graph):
        walk(start, set())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_every_trackable_task_has_a_tracking_side():
    from vptracker.infer.sides import SIDES
    from vptracker.tasks import trackable_tasks

    assert set(trackable_tasks()) == set(SIDES)
