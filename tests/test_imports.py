"""The package's import graph reads top to bottom: no import cycles, and no module imports one
in a higher layer than its own.

The graph is read with `ast` from the source, so it holds every import a module can run:
module-level ones and those inside functions (which only postpone a dependency, they do not
remove it). An import names the module it loads; for the layers, `from PKG import NAME`, where
PKG's `__init__` takes NAME from a submodule at module level, names that submodule (e.g.
`from dropbench import rundir` depends on dropbench.rundir, not on the package's `load_runs`
facade). For cycles it also depends on PKG itself, whose `__init__` that statement names: a
module the facade reaches (dropbench.api and what it reads with) must import by module path
(`import dropbench.rundir as rundir`, `from dropbench.errors import DropbenchError`).
"""

import ast
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "dropbench"

# Lowest first. A module imports from its own layer or the ones below it.
LAYERS = ["foundation", "declarations", "builders", "loggers", "engine", "sweep", "readers",
          "bench", "apps"]

# Module or package -> layer; a module takes the layer of its longest declared prefix, so a new
# module inside a package gets the package's layer without a line here.
LAYER_OF = {
    # torch-free helpers every layer may use
    "dropbench.errors": "foundation",
    "dropbench.version": "foundation",
    "dropbench.units": "foundation",
    "dropbench.ranges": "foundation",
    "dropbench.paper": "foundation",
    "dropbench.groups": "foundation",
    "dropbench.machine": "foundation",
    "dropbench.rundir": "foundation",
    "dropbench.atomic": "foundation",
    "dropbench.jobdir": "foundation",
    # the registries and the torch-free declarations of schemes, places, models, datasets and
    # optimisers that fill them, the config schemas built from them, and the plugins' Hydra glue
    "dropbench.registry": "declarations",
    "dropbench.plugin_conf": "declarations",
    "dropbench.datasets": "declarations",
    "dropbench.optimizers": "declarations",
    "dropbench.objectives": "declarations",
    "dropbench.config": "declarations",
    "dropbench.loggers.config": "declarations",
    "dropbench.dropout.params": "declarations",
    "dropbench.dropout.catalog": "declarations",
    "dropbench.dropout.kinds": "declarations",
    "dropbench.dropout.schedule": "declarations",
    "dropbench.dropout.plan": "declarations",
    "dropbench.dropout.describe": "declarations",
    "dropbench.dropout.no_op": "declarations",
    "dropbench.models.places": "declarations",
    # what builds the pieces of a run
    "dropbench.data": "builders",
    "dropbench.dropout": "builders",
    "dropbench.models": "builders",
    "dropbench.loggers": "loggers",
    "dropbench.engine": "engine",
    "dropbench.sweep": "sweep",
    # what reads finished or running run dirs
    "dropbench.report": "readers",
    "dropbench.status": "readers",
    "dropbench.diff": "readers",
    "dropbench.api": "readers",
    "dropbench.bench": "bench",
    # entry points: the CLI, its Hydra callbacks and the package's facade
    "dropbench.demo": "apps",
    "dropbench.preflight": "apps",
    "dropbench.train_help": "apps",
    "dropbench.user_errors": "apps",
    "dropbench.cli": "apps",
    "dropbench": "apps",
}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int


def module_files() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def reexports(modules: dict[str, Path]) -> dict[tuple[str, str], str]:
    """(package, name) -> the submodule a package's __init__ takes that name from."""
    taken = {}
    for name, path in modules.items():
        if path.name != "__init__.py":
            continue
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
                for alias in node.names:
                    taken[(name, alias.asname or alias.name)] = node.module
    return taken


def imports_of(name: str, path: Path, modules: dict, taken: dict,
               packages_named: bool = False) -> list[Import]:
    """The modules `name` imports; with `packages_named`, also the package a `from PKG import`
    names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules
                       else taken.get((base, a.name), base) for a in node.names]
            if packages_named:
                targets.append(base)
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import dropbench.x.y` of a name
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append(Import(name, target, node.lineno))
    return found


def import_graph(packages_named: bool = False) -> dict[str, list[Import]]:
    modules = module_files()
    taken = reexports(modules)
    return {name: imports_of(name, path, modules, taken, packages_named)
            for name, path in modules.items()}


def layer_of(module: str) -> str | None:
    prefix = module
    while prefix:
        if prefix in LAYER_OF:
            return LAYER_OF[prefix]
        prefix = prefix.rpartition(".")[0]
    return None


def cycles(graph: dict[str, list[Import]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in {i.target for i in graph[v]}:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_at_module_level_and_inside_functions():
    graph = import_graph()
    cli_imports = {i.target for i in graph["dropbench.cli"]}
    assert "dropbench.groups" in cli_imports  # module level
    assert "dropbench.engine" in cli_imports  # inside _train_task
    assert "dropbench.errors" in {i.target for i in graph["dropbench.rundir"]}  # re-exported name


def test_cycles_finds_a_loop_and_leaves_out_what_only_leads_into_it():
    graph = {m: [Import(m, t, 1) for t in targets]
             for m, targets in {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}.items()}
    assert cycles(graph) == [{"a", "b", "c"}]


def test_every_module_has_a_declared_layer():
    missing = sorted(m for m in import_graph() if layer_of(m) is None)
    assert not missing, f"declare a layer for {missing} in LAYER_OF"


def test_no_import_cycles():
    found = cycles(import_graph(packages_named=True))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_no_module_imports_a_higher_layer():
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = [f"{i.source} ({layer_of(i.source)}) imports {i.target} ({layer_of(i.target)}) "
              f"at line {i.line}"
              for imports in import_graph().values() for i in imports
              if layer_of(i.source) and layer_of(i.target)
              and rank[layer_of(i.target)] > rank[layer_of(i.source)]]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_the_registry_loads_by_name_only_declaration_modules():
    """registry.BUILTIN names modules as strings (no import edge for the graph to see); the
    registry reads them on its first use, so they must sit no higher than the registry."""
    from dropbench.registry import BUILTIN

    assert {m: layer_of(m) for m in BUILTIN} == {m: layer_of("dropbench.registry") for m in BUILTIN}
