"""The package's shape, measured: no import cycles, no lower layer importing a higher one, no
module over 400 lines and no function over 60 (the developers' guide, issue 12).

The import graph is read from the source with ``ast``: imports inside functions and under
``TYPE_CHECKING`` count too (a lazy import is still a dependency), and so does a string
naming a module (``"lpfilter.backends.jetdirect:JetDirectBackend"``, which a registry
imports by name). An import of a module's own package counts like any other: a module
that imports what its package's ``__init__`` defines, while that ``__init__`` imports the
module, is a circle.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lpfilter"

#: Each room and the rooms it may import (besides itself and the ground floor).
GROUND = {"lpfilter", "lpfilter.text", "lpfilter.errors", "lpfilter.job", "lpfilter.locks",
          "lpfilter.safefiles", "lpfilter.filtercodes", "lpfilter.programs", "lpfilter.structs",
          "lpfilter.logs", "lpfilter.jsontext", "lpfilter.digest", "lpfilter.enums",
          "lpfilter.memo"}
ALLOWED: dict[str, set[str]] = {
    "lpfilter.printcap": set(),
    "lpfilter.protocols": set(),
    "lpfilter.children": {"lpfilter.printcap"},
    "lpfilter.backends": {"lpfilter.printcap", "lpfilter.protocols", "lpfilter.children"},
    "lpfilter.emulator": {"lpfilter.protocols"},
    "lpfilter.filters": {"lpfilter.children", "lpfilter.printcap", "lpfilter.protocols",
                         "lpfilter.backends"},
    "lpfilter.spool": {"lpfilter.children", "lpfilter.printcap", "lpfilter.protocols",
                       "lpfilter.backends", "lpfilter.filters"},
    "lpfilter.filtermode": {"lpfilter.children", "lpfilter.printcap", "lpfilter.protocols",
                            "lpfilter.backends"},
    "lpfilter.server": {"lpfilter.children", "lpfilter.printcap", "lpfilter.protocols",
                        "lpfilter.backends", "lpfilter.filters", "lpfilter.spool"},
    "lpfilter.commands": {"lpfilter.children", "lpfilter.printcap", "lpfilter.protocols",
                          "lpfilter.backends", "lpfilter.filters", "lpfilter.spool",
                          "lpfilter.filtermode", "lpfilter.emulator", "lpfilter.server",
                          "lpfilter.status"},
    "lpfilter.cli": {"lpfilter.commands", "lpfilter.status", "lpfilter.printcap"},
    "lpfilter.__main__": {"lpfilter.cli"},
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()
#: A string that names a module and a name in it, as a registry does ("module:Class"); a
#: module's name alone may be a logger's, and is an edge only given to import_module.
_NAMED_MODULE = re.compile(r"^(lpfilter(?:\.\w+)+):\w+$")


def _called(node: ast.Call) -> str:
    """The name a call is made through: ``f`` of ``f(...)`` or ``m.f(...)``."""
    func = node.func
    return func.id if isinstance(func, ast.Name) else (
        func.attr if isinstance(func, ast.Attribute) else "")


def _imports(name: str, path: Path) -> set[str]:
    """The lpfilter modules that ``name`` imports, anywhere in its text."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and _called(node) in ("import_module", "__import__"):
            targets.update(arg.value for arg in node.args[:1]
                           if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            named = _NAMED_MODULE.match(node.value)
            if named:
                targets.add(named.group(1))
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            subs = [f"{base}.{alias.name}" for alias in node.names]
            modules = [s for s in subs if s in MODULES]
            targets.update(modules)
            if len(modules) < len(subs):
                targets.add(base)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(module: str) -> str:
    """The room (package or ground-floor module) a module lives in."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_graph_is_read() -> None:
    # The reader itself: known edges are seen, lazy ones included.
    assert "lpfilter.printcap.grammar" in GRAPH["lpfilter.printcap.source"]
    assert "lpfilter.commands.environment" in GRAPH["lpfilter.cli"]
    assert "lpfilter.backends.jetdirect" in GRAPH["lpfilter.backends"]  # the registry's string
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_lower_layer_imports_a_higher_one(module: str) -> None:
    room = _room(module)
    allowed = ALLOWED.get(room, set()) | GROUND | {room}
    if room in GROUND:
        allowed = GROUND  # the ground floor imports only the ground floor
    wrong = sorted(t for t in GRAPH[module] if _room(t) not in allowed)
    assert wrong == [], f"{module} ({room}) imports {wrong}"


def test_exit_statuses_are_chosen_at_the_command_edge() -> None:
    users = sorted(m for m, deps in GRAPH.items() if "lpfilter.status" in deps)
    assert all(_room(m) in ("lpfilter.commands", "lpfilter.cli") for m in users), users


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module: str) -> None:
    lines = MODULES[module].read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{MODULES[module]}: {lines} lines"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_function_size(module: str) -> None:
    path = MODULES[module]
    long = [f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno is not None
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_readme_layout_names_every_module() -> None:
    # README's "Layout" is the map of the rooms: every module is on it, and nothing that is
    # not there any more.
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    # Each room's paragraph names its modules; a ground-floor module is named in full.
    named: set[str] = set()
    for paragraph in layout.split("\n- "):
        room = re.search(r"\*\*`lpfilter/([a-z_]+)/`\*\*", paragraph)
        for path in re.findall(r"`((?:lpfilter/)?(?:[a-z_]+/)*[a-z_]+\.py)`", paragraph):
            if path.startswith("lpfilter/"):
                named.add(path.removeprefix("lpfilter/"))
            elif room and "/" not in path:
                named.add(f"{room.group(1)}/{path}")
            elif "/" not in path:
                named.add(path)  # the ground floor's paragraph
    files = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
             if path.name not in ("__init__.py", "__main__.py")}
    assert sorted(files - named) == [], "modules missing from README's Layout"
    assert sorted(n for n in named - files if not n.startswith("test_")) == [], \
        "README's Layout names modules that do not exist"


def test_loggers_named_by_the_edge_are_modules() -> None:
    # watch's INFO default names loggers by module: a module moved must not silence it.
    from lpfilter import cli
    assert [name for name in cli._WATCH_LOGGERS if name not in MODULES] == []
