"""dvc.yaml's code dependencies are the packages a stage runs, derived here from its imports: a module added
to a package needs no edit, and a stage that starts importing a new package fails until dvc.yaml names it.
Without them DVC would keep stale results after a code change; with too many, it re-runs stages for nothing."""

import ast

import pytest
import yaml
from conftest import REPO

STAGE_MODULES = {
    "prepare": "gsimclr/stages/prepare.py",
    "autoencoder": "gsimclr/stages/autoencoder.py",
    "cluster": "gsimclr/stages/cluster.py",
    "pretrain_simclr": "gsimclr/stages/pretrain.py",
    "pretrain_gsimclr": "gsimclr/stages/pretrain.py",
    "evaluate": "gsimclr/stages/evaluate.py",
    "controls": "gsimclr/stages/evaluate.py",
    "supervised": "gsimclr/stages/evaluate.py",
    "compare": "gsimclr/stages/compare.py",
}
BOOKKEEPING = {"gsimclr/system", "gsimclr/pipeline"}
"""Packages that read and move bytes, lay out paths and log to MLflow, but compute nothing a stage's outputs
depend on (a change there must not re-run a study)."""


def imported_modules(path: str, seen: set[str]) -> set[str]:
    """Every gsimclr module file `path` imports, transitively (repository-relative paths); what a bookkeeping
    module imports serves the bookkeeping (tracking draws with `outputs.plots`), so it is not followed."""
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gsimclr")):
            continue
        base = node.module.replace(".", "/")
        targets = [f"{base}/{alias.name}.py" for alias in node.names] if (REPO / base).is_dir() else [f"{base}.py"]
        for module in targets:
            if module not in seen:
                seen.add(module)
                if module.rsplit("/", 1)[0] not in BOOKKEEPING:
                    imported_modules(module, seen)
    return seen


def code_deps(stage_module: str) -> set[str]:
    """The stage's own module files under `gsimclr/stages/`, and every other package it imports from."""
    needed = set()
    for module in imported_modules(stage_module, {stage_module}):
        package = module.rsplit("/", 1)[0]
        needed.add(module if package == "gsimclr/stages" else package)
    return needed - BOOKKEEPING


@pytest.mark.parametrize("stage", sorted(STAGE_MODULES))
def test_stage_deps_are_the_packages_it_imports(stage):
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]
    declared = {dep for dep in spec.get("do", spec)["deps"] if isinstance(dep, str) and dep.startswith("gsimclr")}
    needed = code_deps(STAGE_MODULES[stage])
    assert declared == needed, f"dvc.yaml stage {stage}: missing {needed - declared}, extra {declared - needed}"


def test_dvc_ignores_bytecode_inside_package_deps():
    assert "__pycache__/" in (REPO / ".dvcignore").read_text().splitlines()
