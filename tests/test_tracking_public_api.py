"""The project uses MLflow through its public API only: private names change without notice
between MLflow releases (``fluent._active_run_stack`` did), public ones are deprecated first."""

from __future__ import annotations

import ast
import re

from conftest import REPO

SRC = REPO / "src" / "facesketch"


def private_mlflow_uses(source: str) -> list[str]:
    """``name`` (line) of every private MLflow name ``source`` imports or reaches through an attribute.

    A name is MLflow's when it is ``mlflow``, or bound by ``import mlflow...`` or
    ``from mlflow... import ...`` anywhere in the file (also inside functions).
    """
    tree = ast.parse(source)
    bound = {"mlflow"}
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mlflow":
                    bound.add((alias.asname or alias.name).split(".")[0])
                    found += [f"{alias.name} ({node.lineno})" for part in alias.name.split(".") if part.startswith("_")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mlflow":
            if any(part.startswith("_") for part in node.module.split(".")):
                found.append(f"{node.module} ({node.lineno})")
            for alias in node.names:
                bound.add(alias.asname or alias.name)
                if alias.name.startswith("_"):
                    found.append(f"{node.module}.{alias.name} ({node.lineno})")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            root = node.value
            while isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
                root = root.func if isinstance(root, ast.Call) else root.value
            if isinstance(root, ast.Name) and root.id in bound:
                found.append(f"{ast.unparse(node)} ({node.lineno})")
    return found


def test_the_checker_finds_what_the_old_tracking_code_did():
    old = '''
from mlflow.tracking import fluent
import mlflow.tracking.fluent as fl
from mlflow.store.db.utils import _get_alembic_config
def abandon(mlflow):
    fluent._active_run_stack.get().clear()
    return mlflow.tracking.fluent._get_experiment_id(), fl._last_logged_model_id
'''
    assert sorted(private_mlflow_uses(old)) == sorted([
        "mlflow.store.db.utils._get_alembic_config (4)", "fluent._active_run_stack (6)",
        "mlflow.tracking.fluent._get_experiment_id (7)", "fl._last_logged_model_id (7)"])
    # public names, and private names of the project's own objects, are fine
    assert private_mlflow_uses("import mlflow\nfrom mlflow import MlflowClient\n"
                               "def f(self):\n    mlflow.set_experiment(experiment_id=self._id)\n"
                               "    return MlflowClient().get_run(self._run).info\n") == []


def test_src_uses_no_private_mlflow_name():
    files = sorted(SRC.rglob("*.py"))
    assert any(p.parent.name == "tracking" for p in files)  # the tracking package is among those read
    found = {str(p.relative_to(REPO)): uses for p in files if (uses := private_mlflow_uses(p.read_text()))}
    assert found == {}
    # the issue's own check: `grep -rn "mlflow.*\._" src` prints nothing
    grep = [f"{p.relative_to(REPO)}:{n}" for p in files
            for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"mlflow.*\._", line)]
    assert grep == []
