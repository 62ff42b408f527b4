"""dvc.yaml declares, for every stage, every project module its command can import.

A module missing from a stage's deps means `dvc repro` keeps stale outputs
after that module changes. The imports are read from the source (every import
statement, also those inside functions, plus the model registry's module
names), from the stage's script through every facesketch module it reaches.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, imported_module

SRC = REPO / "src"


def _module_file(dotted: str) -> Path | None:
    base = SRC.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _dotted(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Dotted facesketch modules that ``path`` imports anywhere (package inits included)."""
    tree = ast.parse(path.read_text())
    here = _dotted(path) if path.is_relative_to(SRC) else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "facesketch"}
        elif isinstance(node, ast.ImportFrom):
            mod = imported_module(node, package)
            if mod.split(".")[0] != "facesketch":
                continue
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names if _module_file(f"{mod}.{a.name}")}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"facesketch(\.\w+)+", node.value):
            found.add(node.value)  # importlib.import_module names, e.g. the model registry
    with_parents = set()
    for mod in found:
        parts = mod.split(".")
        with_parents |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return {m for m in with_parents if _module_file(m)}


def reachable(script: Path) -> set[str]:
    """Repo-relative files of the facesketch modules ``script`` can import, transitively."""
    seen: set[str] = set()
    todo = list(_imports(script))
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo += _imports(_module_file(mod))
    return {str(_module_file(m).relative_to(REPO)) for m in seen}


# Modules a stage imports but must NOT depend on, because they only observe it: a change to them
# must not re-run the stage (for train: retrain every model). Each entry says why. Any other
# import missing from a stage's deps still fails the test below, and an entry that the stage no
# longer imports, or that dvc.yaml lists after all, fails too, so the list cannot rot.
OBSERVERS = {
    "train": {
        "src/facesketch/training/estimate.py": "the printed time estimate for the remaining stages",
        "src/facesketch/training/flops.py": "FLOP counts, used only by the time estimate",
        "src/facesketch/tracking/__init__.py": "MLflow: records the run (tests/test_tracking.py checks the record)",
        "src/facesketch/tracking/run.py": "MLflow: the run's start, metrics, artifacts and end status",
        "src/facesketch/tracking/store.py": "MLflow: where the store is",
        "src/facesketch/tracking/tags.py": "MLflow: the run's tags (git commit, DVC experiment)",
    },
}


def _stages():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in spec.items():
        script = re.search(r"python (stages/\w+\.py)", stage["cmd"]).group(1)
        deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
        yield name, REPO / script, deps


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name,script,deps", list(_stages()), ids=[s[0] for s in _stages()])
def test_stage_depends_on_every_module_it_imports(name, script, deps):
    assert str(script.relative_to(REPO)) in deps, f"{name}: its own script is not a dependency"
    imported = reachable(script)
    observers = OBSERVERS.get(name, {})
    missing = sorted(p for p in imported if not _covered(p, deps) and p not in observers)
    assert not missing, f"dvc.yaml stage {name!r} imports these modules but does not depend on them: {missing}"
    assert not [p for p in observers if p not in imported], f"{name}: OBSERVERS lists modules it no longer imports"
    assert not [p for p in observers if _covered(p, deps)], f"{name}: dvc.yaml lists OBSERVERS as deps after all"


def test_the_train_stage_does_not_depend_on_the_face_detector():
    """Face geometry is its own stage (face_geometry): the detector's code retrains nothing."""
    train = reachable(REPO / "stages" / "train.py")
    assert not [p for p in train if p.startswith("src/facesketch/faces/")], train
    deps = dict((n, d) for n, _, d in _stages())
    assert not [d for d in deps["train"] if d.startswith("src/facesketch/faces")]
    assert {"data/processed", "data/split", "src/facesketch/faces"} <= set(deps["face_geometry"])


def test_the_checker_sees_lazy_and_registry_imports():
    train = reachable(REPO / "stages" / "train.py")
    assert "src/facesketch/models/unet_gan.py" in train   # named in the registry only
    assert "src/facesketch/core/backend.py" in train        # imported inside functions too
    assert "src/facesketch/data/dataset.py" in train
    assert not [p for p in train if p.startswith("src/facesketch/report/")]  # the report never retrains a model
    report = reachable(REPO / "stages" / "report.py")
    assert {"src/facesketch/report/__init__.py", "src/facesketch/report/charts.py",
            "src/facesketch/report/html_writer.py"} <= report   # a package's modules, through its __init__
