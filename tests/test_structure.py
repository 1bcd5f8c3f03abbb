"""The shape of the package, read from the source with ``ast`` (nothing is imported):

* no import circle between modules of ``strided`` (an import anywhere in a module,
  top level or inside a function, is an edge: a circle through a lazy import is still
  two modules that each need the other);
* no private name (``_x``) imported from another ``strided`` module (make it public or
  move it); a package may import its own private submodules (``from . import _runtime``).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "strided"



def module_files(root: Path = SRC) -> dict:
    """``{"strided.nn.layers": (path, is_package), ...}`` for every ``.py`` file under ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules[".".join(parts)] = (path, is_package)
    return modules


def imports_of(name: str, path: Path, is_package: bool, modules: dict) -> list:
    """``[(target module, imported name or None, line), ...]`` for the strided imports in one file.

    ``from a.b import c`` gives ``(a.b.c, None)`` when ``a.b.c`` is a module, else ``(a.b, "c")``.
    """
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "strided"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "strided":
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:
                    found.append((submodule, None, node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
    return found


def import_graph(root: Path = SRC) -> tuple:
    """``(modules, edges)``: edges ``{module: {imported module: first line}}`` within strided."""
    modules = module_files(root)
    edges = {name: {} for name in modules}
    for name, (path, is_package) in modules.items():
        for target, _, line in imports_of(name, path, is_package, modules):
            if target in modules and target != name:
                edges[name].setdefault(target, line)
    return modules, edges


def import_circles(edges: dict) -> list:
    """Strongly connected components with more than one module (Tarjan, iterative), each sorted."""
    index, low, on_stack, stack, circles = {}, {}, set(), [], []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def describe_circle(component: list, edges: dict, modules: dict) -> str:
    inside = set(component)
    lines = [f"  {a} -> {b} ({modules[a][0].relative_to(SRC.parent)}:{line})"
             for a in component for b, line in sorted(edges[a].items()) if b in inside]
    return "import circle between " + ", ".join(component) + ":\n" + "\n".join(lines)


def private_imports(root: Path = SRC) -> list:
    """``["strided/x.py:12 imports _name from strided.y", ...]``."""
    modules = module_files(root)
    found = []
    for name, (path, is_package) in modules.items():
        for target, imported, line in imports_of(name, path, is_package, modules):
            leaf = imported if imported is not None else target.rpartition(".")[2]
            if not leaf.startswith("_") or leaf.startswith("__"):
                continue
            if imported is None and target.rpartition(".")[0] in (name, name.rpartition(".")[0]):
                continue     # a package's own private submodule (from . import _runtime)
            if target == name:
                continue
            what = f"{imported} from {target}" if imported is not None else f"the private module {target}"
            found.append((name, f"{path.relative_to(root.parent)}:{line} imports {what}"))
    return found


def test_the_checker_sees_a_circle_and_a_private_import(tmp_path):
    """The checks themselves: a made-up package with a circle and a private import."""
    pkg = tmp_path / "strided"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import _runtime\n")
    (pkg / "_runtime.py").write_text("")
    (pkg / "a.py").write_text("from .b import helper\n")
    (pkg / "b.py").write_text("def helper():\n    from .sub.c import _secret\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from .. import a\n_secret = 1\n")
    modules, edges = import_graph(pkg)
    assert import_circles(edges) == [["strided.a", "strided.b", "strided.sub.c"]]
    assert [m for m, _ in private_imports(pkg)] == ["strided.b"]


def test_no_import_circle():
    modules, edges = import_graph()
    circles = import_circles(edges)
    assert not circles, "\n".join(describe_circle(c, edges, modules) for c in circles)


def test_no_private_name_imported_from_another_module():
    offending = [text for module, text in private_imports()]
    assert not offending, "private names imported across modules:\n  " + "\n  ".join(offending)


@pytest.mark.parametrize("layer", ["tensor", "functional", "nn", "optim", "data", "models", "io"])
def test_lower_layers_never_import_applications(layer):
    applications = ("detect", "face", "style", "transfer", "viz", "cli")
    modules, edges = import_graph()
    bad = [f"{m} imports {t} ({modules[m][0].relative_to(SRC.parent)}:{line})"
           for m, targets in edges.items()
           if (m == f"strided.{layer}" or m.startswith(f"strided.{layer}."))
           for t, line in targets.items() if t.split(".")[1:2] and t.split(".")[1] in applications]
    assert not bad, "\n".join(bad)
