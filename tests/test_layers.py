"""The package's import structure: data flows one way and every import points down the layers.

    tasks (pure numpy generators) < base (io, citation, config) < data (builders, streams, export, tokenizer)
    < models (modeling, checkpoints, statistics, downstream, metrics) < training < hub (and cards) < cli

Every module under ``hf_synpre/`` is parsed with ``ast`` (nothing is imported). Function-level imports
count like module-level ones: a lazy import is still a dependency, and it is where cycles hide.
"""

import ast
import sys
from functools import lru_cache

from conftest import REPO

PACKAGE = "hf_synpre"

# Lowest first. A module is in the layer of the longest name here that is it or one of its packages.
LAYERS = {
    "tasks": ["hf_synpre.tasks"],
    "base": ["hf_synpre.io", "hf_synpre.citation", "hf_synpre.config"],  # shared rules, importing nothing of the package
    "data": ["hf_synpre.data", "hf_synpre.tokenizer"],
    "models": ["hf_synpre.modeling", "hf_synpre.modeling_causal", "hf_synpre.checkpoints", "hf_synpre.statistics",
               "hf_synpre.transfer", "hf_synpre.downstream", "hf_synpre.metrics"],
    "training": ["hf_synpre.training", "hf_synpre.recipe_utils"],
    "hub": ["hf_synpre.hub", "hf_synpre.cards"],
    "cli": ["hf_synpre.cli"],
}
RANK = {layer: i for i, layer in enumerate(LAYERS)}

# Upward imports that are known and still being moved: (importer, imported) -> why it is allowed for now.
# Empty: every import of the package points down. An entry that is no longer needed fails the test, so
# the list only shrinks.
EXCEPTIONS: dict = {}


@lru_cache(maxsize=None)
def modules() -> dict:
    """Module name -> path. Where a module and a package of the same name coexist (mid-split), the package
    is what ``import`` finds, so it wins."""
    found = {}
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        if is_package or name not in found:
            found[name] = path
    return found


def _imports(name: str):
    """(imported module or package name, lineno) for every import statement in module ``name``: absolute,
    relative, at any depth. ``from pkg import x`` names ``pkg.x`` when that is a module, else ``pkg``."""
    path = modules()[name]
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - node.level + 1]
                target = ".".join(parent + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in modules() else target), node.lineno


def _nearest_module(name: str) -> str:
    while name not in modules():
        name = name.rsplit(".", 1)[0]
    return name


@lru_cache(maxsize=None)
def edges() -> dict:
    """Module -> {imported module: first line}, within the package. Importing ``a.b.c`` also runs the
    packages ``a.b`` and ``a``, so they are edges too, except the importer's own packages (already running)."""
    graph = {}
    for name in modules():
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        out = {}
        for target, line in _imports(name):
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            target = _nearest_module(target)
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                dep = ".".join(parts[:i])
                if dep != name and dep not in own and dep in modules():
                    out.setdefault(dep, line)
        graph[name] = out
    return graph


def layer_of(name: str):
    best = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (layer, prefix)
    return best[0] if best else None


def test_every_module_has_a_layer():
    # the root package only re-exports, lazily (importlib), so it has no place in the order
    missing = [m for m in modules() if m != PACKAGE and layer_of(m) is None]
    assert not missing, f"modules in no layer (add them to LAYERS in {__file__}): {missing}"


def test_the_root_package_imports_nothing_of_the_package_eagerly():
    # everything may import `hf_synpre` (Python does, for any submodule), so it must not import them back
    assert not edges()[PACKAGE], edges()[PACKAGE]


def test_the_task_layer_imports_only_itself_the_standard_library_and_numpy():
    bad = []
    for name in modules():
        if layer_of(name) != "tasks":
            continue
        for target, line in _imports(name):
            top = target.split(".")[0]
            inside = target == "hf_synpre.tasks" or target.startswith("hf_synpre.tasks.")
            if not (inside or top == "numpy" or (top != PACKAGE and top in sys.stdlib_module_names)):
                bad.append(f"{modules()[name].relative_to(REPO)}:{line} imports {target}")
    assert not bad, "hf_synpre/tasks must stay pure (a tokenizer or encoder is passed in):\n" + "\n".join(bad)


def _cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_there_are_no_import_cycles():
    graph = edges()
    cycles = _cycles(graph)
    detail = [
        " | ".join(f"{a} -> {b} (line {graph[a][b]})" for a in comp for b in comp if b in graph[a]) for comp in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_imports_point_down_the_layers():
    upward, used = [], set()
    for name, deps in edges().items():
        if name == PACKAGE:
            continue
        for dep, line in deps.items():
            if dep == PACKAGE or RANK[layer_of(dep)] <= RANK[layer_of(name)]:
                continue
            if (name, dep) in EXCEPTIONS:
                used.add((name, dep))
                continue
            upward.append(f"{modules()[name].relative_to(REPO)}:{line}: {name} ({layer_of(name)}) imports {dep} ({layer_of(dep)})")
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)
    stale = set(EXCEPTIONS) - used
    assert not stale, f"these exceptions are no longer needed; remove them from EXCEPTIONS: {sorted(stale)}"


def test_the_checker_sees_lazy_imports_and_packages():
    # the hub publishes through the data layer's export with a function-level import
    assert "hf_synpre.data.export" in edges()["hf_synpre.hub.publish"]
    assert "hf_synpre.data" in edges()["hf_synpre.hub.publish"]  # its package runs first
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
