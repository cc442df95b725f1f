"""Architecture: the imports of greensink flow one way, and docs/architecture.md stays true.

The import graph is read from the source (every ``import greensink...`` and ``from greensink...
import ...``, also those inside functions), not from a run, so an import that only happens on
one code path still counts. Importing ``greensink.a.b`` from outside the package ``greensink.a``
also runs ``greensink/a/__init__.py`` first, so it depends on ``greensink.a`` too.

Checked: no import cycle among greensink modules (each cycle is named); no private (underscore)
name taken from another greensink module, in the package, the rule scripts or the rule files; the
bottom layer (errors, units, grid, io, package_data) imports nothing above it; nothing in the package imports the
workflow glue or the command line; docs/architecture.md names every module, and only modules.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "greensink"
DOC = ROOT / "docs" / "architecture.md"
BOTTOM = {"greensink.errors", "greensink.units", "greensink.grid", "greensink.io", "greensink.package_data"}
TOP = {"greensink.workflow": {"greensink.cli"}, "greensink.cli": set()}  # module -> who may import it


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = modules()


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports(name: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(module imported, name taken from it or None, line) of every greensink import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "greensink"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the importer's package
                base = _package_of(name, path).split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module.split(".")[0] != "greensink":
                continue
            for a in node.names:
                sub = f"{module}.{a.name}"
                out.append((sub, None, node.lineno) if sub in MODULES else (module, a.name, node.lineno))
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the greensink modules it imports (with the packages those imports run)."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for module, _, _ in imports(name, path):
            target = module
            while target and target not in MODULES:  # greensink.a.b.X where X is a name, not a module
                target = target.rpartition(".")[0]
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # greensink.a, greensink.a.b, ...: each __init__ runs
                dep = ".".join(parts[:i])
                inside = name == dep or name.startswith(dep + ".")  # its package is running already
                if dep in MODULES and dep != name and (dep == target or not inside):
                    edges[name].add(dep)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path back to its start) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    out = []
    for group in groups:  # the shortest way from the group's first module back to itself
        start, members = group[0], set(group)
        paths = {start: [start]}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(edges[v] & members):
                if w == start:
                    out.append([*paths[v], start])
                    queue = []
                    break
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    queue.append(w)
    return out


def test_the_scan_sees_imports_inside_functions_and_the_packages_they_run():
    edges = graph()
    assert "greensink.preflight" in edges["greensink.workflow"]  # imported inside project_setup
    assert {"greensink.ingest", "greensink.stac"} <= edges["greensink.config"]  # inside imagery_problems
    assert "greensink" in edges["greensink.cli"]  # from greensink import __version__
    assert "greensink.ingest" in edges["greensink.lazy"]
    assert "greensink.ingest" not in edges["greensink.ingest.reader"]  # a sibling: the package is running already
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycle(s) among greensink modules (break them: see docs/architecture.md):\n" + "\n".join(
        "  " + " -> ".join(c) for c in found)


def _private(name: str | None) -> bool:
    return bool(name) and name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _rule_files() -> list[Path]:
    return [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]


def test_no_private_name_is_imported_from_another_module():
    found = []
    for name, path in MODULES.items():
        for module, imported, line in imports(name, path):
            if module != name and _private(imported):
                found.append(f"{path.relative_to(ROOT)}:{line}: {imported} from {module}")
        aliases = {}  # local name -> greensink module, to catch module._name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in MODULES})
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "greensink":
                aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names
                                if f"{node.module}.{a.name}" in MODULES})
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and aliases[node.value.id] != name and _private(node.attr)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    for path in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        for module, imported, line in imports("script", path):
            if _private(imported):
                found.append(f"{path.relative_to(ROOT)}:{line}: {imported} from {module}")
    for path in _rule_files():
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            m = re.match(r"\s*from (greensink[\w.]*) import (.+)", line)
            if m:
                names = [n.strip().split(" as ")[0] for n in m.group(2).split("#")[0].strip("() ").split(",")]
                found += [f"{path.relative_to(ROOT)}:{line_no}: {n} from {m.group(1)}" for n in names if _private(n)]
    assert not found, ("private names used across modules (make the name public and document it, or move the code "
                       "to the module that owns it):\n" + "\n".join("  " + f for f in found))


def test_layers_point_one_way():
    edges = graph()
    wrong = [f"{m} imports {d}" for m in sorted(BOTTOM) for d in sorted(edges[m] - BOTTOM)]
    wrong += [f"{m} imports {top} (only {sorted(allowed) or 'nothing'} may)" for top, allowed in TOP.items()
              for m in sorted(edges) if top in edges[m] and m not in allowed]
    assert not wrong, "imports against the layers of docs/architecture.md:\n" + "\n".join("  " + w for w in wrong)


def _named(text: str, module: str) -> bool:
    short = module.removeprefix("greensink.").removeprefix("greensink")
    path = short.replace(".", "/")
    forms = {module, short, f"{path}.py", f"{path}/", f"{path}/__init__.py"} - {""}
    return any(f"`{f}`" in text for f in forms)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "greensink"))
def test_architecture_map_names_every_module(module):
    assert DOC.exists(), "docs/architecture.md is missing"
    assert _named(DOC.read_text(encoding="utf-8"), module), (
        f"docs/architecture.md does not name {module} (`{module.removeprefix('greensink.')}`): add a line saying what it owns")


def test_architecture_map_names_only_modules():
    rows = re.findall(r"^\|\s*`([\w./]+)`", DOC.read_text(encoding="utf-8"), re.M)
    assert rows, "docs/architecture.md has no module table (rows starting with | `module`)"
    known = {m.removeprefix("greensink.") for m in MODULES}
    stale = [r for r in rows if r.removesuffix(".py").removesuffix("/").replace("/", ".") not in known]
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"
