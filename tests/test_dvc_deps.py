"""dvc.yaml must list every module that shapes a stage's outputs, or DVC would keep stale results after a
code change."""

import ast
from pathlib import Path

import pytest
import yaml
from conftest import REPO

STAGE_MODULES = {
    "prepare": "gsimclr/stages/prepare.py",
    "train": "gsimclr/stages/train_autoencoder.py",
    "cluster": "gsimclr/stages/cluster.py",
    "pretrain_simclr": "gsimclr/stages/pretrain.py",
    "pretrain_gsimclr": "gsimclr/stages/pretrain.py",
    "evaluate": "gsimclr/stages/evaluate.py",
    "controls": "gsimclr/stages/evaluate.py",
    "supervised": "gsimclr/stages/evaluate.py",
    "compare": "gsimclr/stages/compare.py",
}
BOOKKEEPING = {
    "gsimclr/__init__.py",
    "gsimclr/errors.py",
    "gsimclr/storage.py",
    "gsimclr/tracking.py",
    "gsimclr/plots.py",
    "gsimclr/layout.py",
    "gsimclr/machine.py",
}
"""Modules that move bytes, log or draw, but compute nothing a stage's metrics depend on."""


def gsimclr_imports(path: str, seen: set[str]) -> set[str]:
    """Every gsimclr module `path` imports, transitively (as repository-relative file paths)."""
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.ImportFrom) and node.module and (REPO / node.module.replace(".", "/")).is_dir():
            # `from gsimclr.stages import build`: the imported names are modules of the package
            names = [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if (REPO / f"{node.module.replace('.', '/')}/{alias.name}.py").exists()
            ] or names
        for name in names:
            if not name.startswith("gsimclr"):
                continue
            target = name.replace(".", "/")
            module = f"{target}.py" if (REPO / f"{target}.py").exists() else f"{target}/__init__.py"
            if module not in seen:
                seen.add(module)
                gsimclr_imports(module, seen)
    return seen


@pytest.mark.parametrize("stage", sorted(STAGE_MODULES))
def test_stage_deps_cover_the_code_it_runs(stage):
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]
    deps = {dep for dep in (spec.get("do", spec)["deps"]) if isinstance(dep, str)}
    needed = gsimclr_imports(STAGE_MODULES[stage], {STAGE_MODULES[stage]}) - BOOKKEEPING
    assert needed - deps == set(), f"dvc.yaml stage {stage} misses deps"
    assert all(Path(REPO / dep).exists() for dep in deps if dep.startswith("gsimclr/"))
