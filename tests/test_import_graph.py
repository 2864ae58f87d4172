"""bireid's modules import one way: the import graph, read from the source with ``ast``, has no cycle.

Every import counts, wherever it sits (module level, inside a function, under ``TYPE_CHECKING``), and so does
``importlib.import_module`` with a constant name. ``from pkg import name`` is an edge to ``pkg.name`` when
that is a module, else to ``pkg`` itself (its ``__init__``). Python also runs the ``__init__`` of every
package above an imported module; those implicit edges are left out, as a package that imports its members
(the way registries fill up) would otherwise close a loop with each of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bireid"


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """{dotted module name: file} for every .py file of ``package`` (a package is its ``__init__.py``)."""
    out = {}
    for f in sorted((root / package).rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``module`` (source at ``path``) imports anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return _imports_in(tree, module, path.name == "__init__.py", known) - {module}


def _imports_in(tree: ast.AST, module: str, is_package: bool, known: set[str],
                computed: str | None = None) -> set[str]:
    """Imported modules of ``known`` in ``tree``; an ``import_module`` of a computed name counts as ``computed``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node.level, node.module)
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
            arg = node.args[0]
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                found.add(computed or "")
                continue
            name = arg.value
            if name.startswith("."):
                pkg = next((k.value.value for k in node.keywords if k.arg == "package"
                            and isinstance(k.value, ast.Constant)), None)
                if pkg is None and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                    pkg = node.args[1].value
                level = len(name) - len(name.lstrip("."))
                name = _resolve(str(pkg or module), True, level, name.lstrip(".") or None)
            found.add(name)
    return {m for m in found if m in known}


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or \
        (isinstance(func, ast.Name) and func.id == "import_module")


def extension_modules(root: Path = ROOT, package: str = PACKAGE) -> set[str]:
    """Dotted names of compiled modules (``bireid.runtime._engine``): import targets without Python source."""
    files = [f for pat in ("*.so", "*.pyd") for f in (root / package).rglob(pat)]
    return {".".join(f.relative_to(root).parts[:-1] + (f.name.split(".")[0],)) for f in files}


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """{module: the bireid modules it imports}; compiled modules are leaves outside the graph."""
    files = module_files(root, package)
    known = set(files) | extension_modules(root, package)
    return {m: imports_of(m, f, known) & set(files) for m, f in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_bireid_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50 and graph["bireid.cli"], "the graph reader found no modules or no imports"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_reader_sees_every_kind_of_import(tmp_path):
    """The checker on a made-up package: a cycle hidden in a function body, one through importlib, none via
    the implicit parent-package edge."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from . import a\n",
        "a.py": "import os\nfrom .sub import b\n",
        "sub/__init__.py": "from .b import thing\n",
        "sub/b.py": "thing = 1\ndef f():\n    from ..c import x\n",
        "c.py": "import importlib\ndef g():\n    importlib.import_module('pkg.a')\nx = 2\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = import_graph(tmp_path, "pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.sub.b"}, "pkg.sub": {"pkg.sub.b"},
                     "pkg.sub.b": {"pkg.c"}, "pkg.c": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("x = 2\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) is None


def import_guards(module: str, path: Path, known: set[str]) -> list[int]:
    """Lines of ``try:`` blocks that import a bireid module and catch ImportError (a "may not exist yet" guard)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = {t.id for h in node.handlers if h.type is not None
                  for t in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]) if isinstance(t, ast.Name)}
        body = ast.Module(body=node.body, type_ignores=[])
        if caught & {"ImportError", "ModuleNotFoundError"} and \
                _imports_in(body, module, path.name == "__init__.py", known, computed=PACKAGE):
            lines.append(node.lineno)
    return lines


def test_no_import_guards():
    """No "this module may not exist yet" guards: no bireid import sits in a try block catching ImportError."""
    files = module_files()
    known = set(files)
    hits = {m: lines for m, f in files.items() if (lines := import_guards(m, f, known))}
    assert not hits, f"import guards (module: lines): {hits}"
