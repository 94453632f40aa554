"""The package's architecture, checked: subpackages in layers, no module importing from a higher
(or a sibling) layer, and no import circle between modules.

Imports anywhere in a module count, inside functions too (they run when the function runs).
"""

import ast

import pytest

from conftest import ROOT

SRC = ROOT / "src"

# Lowest first. A module may import its own unit (the top-level module or subpackage it belongs
# to) and any unit of a lower layer; units of one layer are siblings and do not import each other.
LAYERS = (
    ("dmc", "dmc.errors", "dmc.names", "dmc.atomic", "dmc.config", "dmc.cores"),  # the package, shared helpers,
                                                        # typed params, the cores a step may use
    ("dmc.io", "dmc.docs_includes"),                    # decoding, log-mel, shards, evaluation-set readers; the
                                                        # docs' include regions (dmc docs)
    ("dmc.synth", "dmc.model", "dmc.docs_numbers"),     # the synthetic corpus; the network and its training;
                                                        # the typed-number rule (reads the include regions)
    ("dmc.evaluation", "dmc.localization"),             # audio features + SVMs; heat maps + localize step
    ("dmc.pipeline",),                                  # the CLI, its steps, params, graph, DVC/Snakemake glue
    ("dmc.studies", "dmc.hear"),                        # studies behind the defaults; the public HEAR alias
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted((SRC / "dmc").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = (path, ast.parse(path.read_text(), str(path)))
    return found


MODULES = modules()


def unit_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def imports_of(module: str) -> set[str]:
    """dmc modules imported anywhere in ``module`` (``from a import b``: a.b when that is a module)."""
    path, tree = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != module}


def test_every_module_has_a_layer():
    assert not [m for m in MODULES if unit_of(m) not in RANK]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_or_sibling_layer(module):
    unit = unit_of(module)
    bad = sorted(m for m in imports_of(module) if unit_of(m) != unit and RANK[unit_of(m)] >= RANK[unit])
    assert not bad, f"{module} (layer {RANK[unit]}) imports {bad} (layers {[RANK[unit_of(m)] for m in bad]})"


def test_no_import_circle():
    graph = {m: imports_of(m) for m in MODULES}
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for dep in sorted(graph[m]):
            visit(dep)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_the_checks_see_a_violation_and_a_circle(monkeypatch):
    """The two checks are not vacuous: an io module importing the model, and cli <-> graph."""
    real = MODULES
    upward = dict(real, **{"dmc.io.logmel": (real["dmc.io.logmel"][0],
                                              ast.parse("from dmc.model.training import Trainer"))})
    monkeypatch.setattr(f"{__name__}.MODULES", upward)
    with pytest.raises(AssertionError, match="dmc.model.training"):
        test_no_module_imports_a_higher_or_sibling_layer("dmc.io.logmel")
    # the circle there was before the steps' entry modules: graph asked cli for the handlers
    circle = dict(real, **{"dmc.pipeline.graph": (real["dmc.pipeline.graph"][0],
                                                   ast.parse("def f():\n    from dmc.pipeline.cli import main"))})
    monkeypatch.setattr(f"{__name__}.MODULES", circle)
    with pytest.raises(AssertionError, match="import circle: .*dmc.pipeline.cli"):
        test_no_import_circle()


def test_the_public_hear_alias_is_the_implementation():
    import dmc.evaluation.hear as impl
    import dmc.hear as public

    for name in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
        assert getattr(public, name) is getattr(impl, name)
