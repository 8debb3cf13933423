"""The package's one rule: imports point down. Every `viewclr` import of every module (lazy ones inside functions
too) goes to a module on a lower layer, or stays inside its own module (docs/architecture.md draws the layers)."""

from __future__ import annotations

import ast
from pathlib import Path

import viewclr

PACKAGE = Path(viewclr.__file__).parent

LAYERS = {
    # the bottom: what everything may use — the errors, then config, runtime, atomic files and provenance, then
    # checkpoints and the run log
    "errors": 0, "config": 1, "runtime": 1, "fileio": 1, "provenance": 1, "checkpoint": 2, "logger": 2,
    # what data and networks are; what a trained or evaluated artefact was made from
    "data": 3, "models": 3, "lineage": 3,
    # built on them
    "features": 4, "methods": 4, "synth": 4,
    # training and evaluation, side by side: neither imports the other
    "engine": 5, "eval": 5,
    # methods compared at equal budgets, the demo, and the pose modality's training, on top of both
    "studies": 6,
    # the command line, and `python -m viewclr`
    "cli": 7, "__main__": 8,
}  # fmt: skip


def layer_of(module: str) -> str:
    """The module (a package or a file) whose layer places a module path relative to the package
    ("eval.classify" → "eval")."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    raise AssertionError(f"viewclr.{module} is on no layer of tests/test_layers.py")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__").removesuffix("__init__")
        found[name] = path
    return found


def imports(path: Path, name: str) -> set[str]:
    """Every viewclr module `path` imports, relative to the package (the package itself, for __version__, left out)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "viewclr":  # `from viewclr import x`: x is a submodule or the version
                found |= {f"viewclr.{alias.name}" for alias in node.names if alias.name != "__version__"}
            else:
                found.add(node.module)
    return {m.removeprefix("viewclr.") for m in found if m.startswith("viewclr.")}


def test_imports_point_down_only():
    violations = []
    for name, path in sorted(modules().items()):
        if name == "":  # the package's __init__ registers the synthetic benchmark: it stands above every layer
            continue
        here = layer_of(name)
        for target in sorted(imports(path, name)):
            there = layer_of(target)
            if there != here and LAYERS[there] >= LAYERS[here]:
                violations.append(f"viewclr.{name} ({here}, layer {LAYERS[here]}) imports viewclr.{target} "
                                  f"({there}, layer {LAYERS[there]})")  # fmt: skip
    assert violations == [], "\n".join(violations)


def test_config_is_a_leaf():
    assert imports(PACKAGE / "config.py", "config") == {"errors"}


def test_every_module_is_on_a_layer():
    for name in modules():
        if name:
            layer_of(name)
