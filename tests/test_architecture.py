"""The architecture's rules, read from the source's import graph (``ast``, nothing imported).

``check_architecture(package_root)`` returns one line per broken rule; the real package must
return none, and synthetic module trees in ``tmp_path`` show that each rule can fail.

The rules
---------
1. **Layers.** Every module belongs to one layer of ``LAYERS`` (bottom first) and imports
   only modules of its own layer or of layers below it. Inside a layer with an order
   (``ORDERED``) a module imports only the modules listed before it. A module that matches
   no layer is itself a failure: a new room has to be placed on purpose.
2. **Core equations stay pure**: the noise, statistics, metrics, label-management, GMM,
   sampler, mixing and method modules import nothing of the engine, the run directory,
   the results, the plots, the report, the sweep or the command line.
3. **No cycles** among runtime imports (``if TYPE_CHECKING:`` imports are not run).
4. **No module imports another module's underscore names** (``from x import _y`` or
   ``x._y`` on an imported module).
5. **No module is over 500 lines.**
6. **Run-directory file names are typed only in runs.py**: no other module holds a string
   literal equal to (or a path ending in) one of runs.py's ``*_FILE`` / ``RESULTS_*`` names.

Where the order is the code's, not the README's
-----------------------------------------------
The README's code map gives the data flow ``data → noise → samplers → mixing → labels →
methods → engine → runs → results/plots → report``. As an import order it holds with three
differences, encoded here as the code layers today:

* ``labels.py`` also holds the input checks the samplers and the GMM share
  (``as_tensor``, ``check_binary``, ``float_matrix_and_labels``), so among the core
  equations ``labels`` comes before ``gmm`` and ``sampling``;
* ``runs.py`` (the run directory's layout) is a store that the engine writes and results,
  plots and report read, so it sits *below* the engine, with ``provenance`` and
  ``tensorboard``;
* ``config.py`` sits above the methods: it reads their registry (each method declares its
  hyperparameters), and the methods name ``Config`` only for type checking.
"""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bmxlib"
MAX_LINES = 500

#: (layer name, module patterns relative to the package; "" is the package's __init__)
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("io", "arrays", "cache", "distributed", "compute", "heads", "measures")),
    ("data", ("data", "data.*")),
    ("core equations", ("noise", "stats", "metrics", "labels", "gmm_em", "gmm", "sampling",
                        "mixing")),
    ("methods", ("methods", "methods.*")),
    ("config", ("config",)),
    ("models", ("models", "pretrain")),
    ("run directory", ("runs", "provenance", "tensorboard")),
    ("experiment", ("experiment", "checkpoints", "passes", "steps", "reference", "recorder")),
    ("engine", ("engine",)),
    ("results and plots", ("results", "management", "paper_tables", "regime", "plots", "plots.*")),
    ("report and tools", ("notebook_specs", "report", "sweep", "launchers", "archive", "demo",
                          "bench", "bench.*", "cli", "train", "")),
)
#: layers whose modules import only those listed before them (no sideways imports)
ORDERED = {
    "core equations": ("noise", "stats", "metrics", "labels", "gmm_em", "gmm", "sampling",
                       "mixing"),
    "experiment": ("experiment", "checkpoints", "passes", "steps", "reference", "recorder"),
    "models": ("models", "pretrain"),
    "foundation": ("io", "arrays", "cache", "distributed", "compute", "heads", "measures"),
}
CORE = ("noise", "stats", "metrics", "labels", "gmm_em", "gmm", "sampling", "mixing",
        "methods", "methods.*")
CORE_NEVER = ("engine", "runs", "results", "plots", "plots.*", "report", "sweep", "launchers",
              "cli", "tensorboard", "experiment", "passes", "checkpoints", "steps", "recorder")


@dataclass
class Module:
    """One source file: its dotted name (relative to the package), path and imports."""

    name: str
    path: Path
    tree: ast.Module
    #: (imported module, imported name or None, line, runtime?) for imports in the package
    imports: list[tuple[str, str | None, int, bool]] = field(default_factory=list)


def _relative_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def read_modules(root: Path) -> dict[str, Module]:
    """Every module of the package at ``root`` with its imports of the package's modules."""
    root = Path(root)
    package = root.name
    modules = {}
    for path in sorted(root.rglob("*.py")):
        name = _relative_name(path, root)
        modules[name] = Module(name, path, ast.parse(path.read_text(), filename=str(path)))
    for module in modules.values():
        typing_only = _type_checking_lines(module.tree)
        here = module.name.split(".") if module.name else []
        if module.path.name != "__init__.py":
            here = here[:-1]
        for node in ast.walk(module.tree):
            runtime = node.lineno not in typing_only if hasattr(node, "lineno") else True
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)]
                    target = [*base, *(node.module.split(".") if node.module else [])]
                elif node.module and node.module.split(".")[0] == package:
                    target = node.module.split(".")[1:]
                else:
                    continue
                for alias in node.names:
                    submodule = ".".join([*target, alias.name])
                    if submodule in modules:  # ``from . import runs``
                        module.imports.append((submodule, None, node.lineno, runtime))
                    else:
                        module.imports.append((".".join(target), alias.name, node.lineno,
                                               runtime))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == package:
                        module.imports.append((".".join(parts[1:]), None, node.lineno, runtime))
    return modules


def _matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _layer(name: str) -> int | None:
    for index, (_, patterns) in enumerate(LAYERS):
        if _matches(name, patterns):
            return index
    return None


def _imported_modules(module: Module, modules: dict[str, Module]):
    """(module name, line, runtime?) of every package module ``module`` imports."""
    for target, _, line, runtime in module.imports:
        if target in modules and target != module.name:
            yield target, line, runtime


def _cycles(modules: dict[str, Module]) -> list[str]:
    graph = {name: {t for t, _, runtime in _imported_modules(m, modules) if runtime}
             for name, m in modules.items()}
    state: dict[str, int] = {}
    found: list[str] = []

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                found.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def _run_file_names(modules: dict[str, Module]) -> set[str]:
    """runs.py's run-directory file names (module constants ``*_FILE`` and ``RESULTS_*``)."""
    runs = modules.get("runs")
    names: set[str] = set()
    if runs is None:
        return names
    for node in runs.tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if (isinstance(target, ast.Name) and len(node.targets) == 1
                and (target.id.endswith("_FILE") or target.id.startswith("RESULTS_"))
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            names.add(node.value.value)
            names.add(node.value.value.rsplit("/", 1)[-1])
    return names


def check_architecture(root: Path) -> list[str]:
    """Every broken rule of the package at ``root``, one line each (empty: all kept)."""
    modules = read_modules(root)
    problems: list[str] = []
    shown = lambda name: name or "__init__"  # noqa: E731
    for name, module in modules.items():
        layer = _layer(name)
        if layer is None:
            problems.append(f"{shown(name)}: in no layer of LAYERS (place it on purpose)")
            continue
        layer_name = LAYERS[layer][0]
        order = ORDERED.get(layer_name)
        for target, line, runtime in _imported_modules(module, modules):
            where = f"{module.path.name}:{line}"
            if _matches(name, CORE) and _matches(target, CORE_NEVER):
                problems.append(f"{shown(name)} imports {target} ({where}): core equations "
                                f"import no engine, runs, results, plots or report")
            if not runtime:
                continue
            other = _layer(target)
            if other is not None and other > layer:
                problems.append(f"{shown(name)} imports {shown(target)} ({where}): layer "
                                f"{layer_name!r} is below {LAYERS[other][0]!r}")
            elif other == layer and order and name in order and target in order \
                    and order.index(target) > order.index(name):
                problems.append(f"{shown(name)} imports {target} ({where}): in layer "
                                f"{layer_name!r} {target} comes after {shown(name)}")
        problems += _underscore_uses(module, modules)
        lines = len(module.path.read_text().splitlines())
        if lines > MAX_LINES:
            problems.append(f"{shown(name)}: {lines} lines (more than {MAX_LINES})")
    problems += [f"import cycle: {cycle}" for cycle in _cycles(modules)]
    file_names = _run_file_names(modules)
    for name, module in modules.items():
        if name == "runs":
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                    node.value == f or node.value.endswith("/" + f) for f in file_names):
                problems.append(f"{shown(name)} types the run-directory file name "
                                f"{node.value!r} ({module.path.name}:{node.lineno}); "
                                f"use the constant of runs.py")
    return problems


def _underscore_uses(module: Module, modules: dict[str, Module]) -> list[str]:
    """``from x import _y`` and ``x._y`` where x is another module of the package."""
    problems = []
    private = lambda n: n.startswith("_") and not n.startswith("__")  # noqa: E731
    aliases: dict[str, str] = {}
    for node in ast.walk(module.tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
    module_names = {alias for alias, real in aliases.items()
                    if any(t == real or t.endswith("." + real) for t, n, *_ in module.imports
                           if n is None)}
    for target, imported, line, _ in module.imports:
        if imported and private(imported) and target != module.name:
            problems.append(f"{module.name or '__init__'} imports {target}.{imported} "
                            f"({module.path.name}:{line}): another module's underscore name")
    for node in ast.walk(module.tree):
        if (isinstance(node, ast.Attribute) and private(node.attr)
                and isinstance(node.value, ast.Name) and node.value.id in module_names):
            problems.append(f"{module.name or '__init__'} uses {node.value.id}.{node.attr} "
                            f"({module.path.name}:{node.lineno}): another module's "
                            f"underscore name")
    return problems


# --------------------------------------------------------------------------------------
# the real package
# --------------------------------------------------------------------------------------
def test_the_package_keeps_every_rule():
    problems = check_architecture(PACKAGE)
    assert not problems, "\n".join(problems)


def test_the_real_graph_is_read():
    """The reader sees the imports it checks (a reader that saw none would pass anything)."""
    modules = read_modules(PACKAGE)
    assert {"engine", "runs", "methods.balancemix", "data.digits_lt"} <= set(modules)
    engine_imports = {t for t, *_ in modules["engine"].imports}
    assert {"runs", "steps"} <= engine_imports
    assert "runs" in {t for t, *_ in modules["results"].imports}
    assert "metrics.jsonl" in _run_file_names(modules)


# --------------------------------------------------------------------------------------
# synthetic trees: each rule fails when broken
# --------------------------------------------------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    base = {"__init__.py": "", "noise.py": "", "engine.py": "", "io.py": "",
            "runs.py": 'METRICS_FILE = "metrics.jsonl"\n',
            "data/__init__.py": "", "data/base.py": ""}
    for rel, text in {**base, **files}.items():
        path = package / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_a_clean_synthetic_tree_passes(tmp_path):
    root = _tree(tmp_path, {"engine.py": "from .noise import x\nfrom . import runs\n",
                            "noise.py": "from .data.base import y\n",
                            "data/base.py": "from ..io import atomic\n"})
    assert check_architecture(root) == []


def test_an_upward_import_fails(tmp_path):
    root = _tree(tmp_path, {"noise.py": "from .engine import fit\n"})
    problems = check_architecture(root)
    assert any(p.startswith("noise imports engine") and "below 'engine'" in p
               for p in problems), problems


def test_an_absolute_upward_import_inside_a_function_fails(tmp_path):
    root = _tree(tmp_path, {"data/base.py": "def f():\n    import pkg.noise\n"})
    assert any(p.startswith("data.base imports noise") for p in check_architecture(root))


def test_a_core_module_importing_runs_fails(tmp_path):
    root = _tree(tmp_path, {"noise.py": "from . import runs\n"})
    problems = check_architecture(root)
    assert any("core equations import no engine" in p for p in problems), problems


def test_a_type_checking_import_is_no_layer_breach_but_core_rule_holds(tmp_path):
    root = _tree(tmp_path, {"io.py": "from typing import TYPE_CHECKING\n"
                                     "if TYPE_CHECKING:\n    from .engine import Fit\n"})
    assert check_architecture(root) == []


def test_an_underscore_import_fails(tmp_path):
    root = _tree(tmp_path, {"engine.py": "from .noise import _helper\n"})
    assert any("underscore name" in p for p in check_architecture(root))
    root = _tree(tmp_path / "b", {"engine.py": "from . import noise\nnoise._helper()\n"})
    assert any("uses noise._helper" in p for p in check_architecture(root))


def test_a_long_module_fails(tmp_path):
    root = _tree(tmp_path, {"io.py": "x = 1\n" * (MAX_LINES + 1)})
    assert any(p.startswith(f"io: {MAX_LINES + 1} lines") for p in check_architecture(root))


def test_a_run_file_name_outside_runs_fails(tmp_path):
    root = _tree(tmp_path, {"engine.py": 'def f(d):\n    return d / "metrics.jsonl"\n'})
    assert any("types the run-directory file name 'metrics.jsonl'" in p
               for p in check_architecture(root))


def test_a_module_in_no_layer_fails(tmp_path):
    root = _tree(tmp_path, {"misc.py": ""})
    assert check_architecture(root) == ["misc: in no layer of LAYERS (place it on purpose)"]


def test_a_cycle_fails(tmp_path):
    root = _tree(tmp_path, {"data/base.py": "from . import other\n",
                            "data/other.py": "from . import base\n"})
    assert any(p.startswith("import cycle: data.base -> data.other -> data.base")
               for p in check_architecture(root))


def test_a_sideways_import_in_an_ordered_layer_fails(tmp_path):
    root = _tree(tmp_path, {"labels.py": "from .sampling import draw\n", "sampling.py": ""})
    assert any("sampling comes after labels" in p for p in check_architecture(root))


@pytest.mark.parametrize("pattern", [p for _, ps in LAYERS for p in ps if "*" not in p and p])
def test_every_named_room_is_placed_once(pattern):
    assert sum(pattern in patterns for _, patterns in LAYERS) == 1
