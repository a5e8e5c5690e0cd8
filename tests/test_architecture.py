"""The package's layers: every import points down (or stays within its package), and no stage imports
another stage, so each layer can be read, reused and tested without the ones above it."""

import ast
from pathlib import Path

import pytest
from conftest import REPO

LAYERS = (
    "system",  # errors, reading inputs, atomic storage, the machine: no gsimclr imports
    "method",  # G-SimCLR's blocks: augmentations, NT-Xent, batch samplers, pseudo labels, the training step
    "settings",  # the params schema and which stage reads which entry
    "models",  # networks, and building them from the settings
    "data",  # datasets, prepared arrays, batches on the device
    "training",  # the epoch loop, checkpoints, optimisers, devices, distributed runs
    "evaluation",  # probes, kNN, statistics over seeds
    "outputs",  # what a stage writes: metric records and figures
    "reporting",  # tables across seeds and the paper's figures
    "pipeline",  # file layout, MLflow tracking, studies
    "embedding",  # a trained encoder put to use: images in, P1/P2/P3 embeddings out (`gsimclr embed`)
    "stages",  # one module per DVC stage, over everything below
    "cli",  # the Typer entry point
)
SHARED_STAGE_MODULES = {"gsimclr.stages.context"}
"""What every stage builds on; a stage proper never imports another."""


def layer(module: str) -> str:
    part = module.split(".")[1] if module.count(".") else ""
    return "cli" if part in {"cli", "__main__"} else part


def modules() -> list[Path]:
    return sorted(p for p in (REPO / "gsimclr").rglob("*.py") if p.name != "__init__.py")


def imports(path: Path) -> set[str]:
    """Every gsimclr module `path` imports (at any depth of the file: lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gsimclr"):
            package = REPO / node.module.replace(".", "/")
            if package.is_dir():
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("gsimclr")}
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def test_every_module_belongs_to_a_layer():
    assert {layer(module_name(path)) for path in modules()} <= set(LAYERS)


@pytest.mark.parametrize("path", modules(), ids=lambda p: module_name(p))
def test_imports_point_down(path):
    own = LAYERS.index(layer(module_name(path)))
    upward = [target for target in imports(path) if LAYERS.index(layer(target)) > own]
    assert not upward, f"{module_name(path)} ({LAYERS[own]}) imports from above: {upward}"


@pytest.mark.parametrize("path", sorted((REPO / "gsimclr" / "stages").glob("[!_]*.py")), ids=lambda p: p.stem)
def test_no_stage_imports_another_stage(path):
    stages = {target for target in imports(path) if layer(target) == "stages"} - SHARED_STAGE_MODULES
    assert not stages - {module_name(path)}, f"{module_name(path)} imports the stages {sorted(stages)}"
