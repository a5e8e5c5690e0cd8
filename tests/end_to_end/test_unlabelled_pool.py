"""Your own images (issue 36): pretrain on an unlabelled folder (`data.pool`), evaluate on a small labelled one, then
embed a third folder with the registered encoder -- the commands of docs/own-images.md, run as a user runs them,
in a temporary DVC project."""

import csv
import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from conftest import REPO, TINY_PARAMS, command_env, write_image_folder, write_params
from PIL import Image
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.data.image_files import decode_files

pytestmark = pytest.mark.slow
runner = CliRunner()


def pool_images(folder: Path, n: int = 40) -> Path:
    """Unlabelled photos at two depths, two colours, another size than the labelled ones, one hidden (not data)."""
    rng = np.random.default_rng(7)
    for i in range(n):
        pixels = rng.integers(0, 60, size=(18, 22, 3), dtype=np.uint8)
        pixels[..., i % 2] += 180
        path = folder / ("trip/day2" if i % 3 else "") / f"IMG_{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(folder / ".thumbnail.png")
    return folder


def pool_params(labelled: Path, pool: Path) -> dict:
    """The tiny study on a labelled folder of 2 x 8 training images and a pool of 40."""
    data = {"name": "imagefolder", "root": str(labelled), "pool": str(pool), "image_size": 8, "val_fraction": 0.25}
    return dict(
        TINY_PARAMS,
        data=data,
        cluster={**TINY_PARAMS["cluster"], "k": 8},
        pretrain={**TINY_PARAMS["pretrain"], "batch_size": 8, "knn": {"every": 1, "k": 3}},
        evaluate={**TINY_PARAMS["evaluate"], "finetune_fraction": 0.5},
    )


def tiny_recipe() -> dict:
    """pipelines/own-images.yaml at a seconds-long budget: its sections, with tiny sizes, epochs and one seed."""
    recipe = yaml.safe_load((REPO / "pipelines" / "own-images.yaml").read_text())
    tiny = pool_params(Path(recipe["data"]["root"]), Path(recipe["data"]["pool"]))
    recipe["seeds"] = tiny["seeds"]
    for section in ("data", "cluster", "model", "pretrain", "evaluate"):
        recipe[section] = {**recipe[section], **tiny[section]}
    recipe["autoencoder"] |= {"filters": [8, 16], "epochs": 2}
    return recipe


def page_commands() -> str:
    """The command block of docs/own-images.md, as a user copies it."""
    page = (REPO / "docs" / "own-images.md").read_text()
    block = page.split("<!-- own-images-commands -->\n```bash\n", 1)[1]
    return block.split("```", 1)[0]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The page's commands, run verbatim with its three folders pointed at generated ones, in a copy of the
    repository whose pipelines/own-images.yaml is the tiny recipe."""
    root = tmp_path_factory.mktemp("pool-project")
    data = tmp_path_factory.mktemp("pool-data")
    for name in ("gsimclr", ".dvc"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("tmp", "cache", "__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    (root / "pipelines").mkdir()
    write_params(root / "pipelines" / "own-images.yaml", tiny_recipe())
    folders = {
        "LABELLED": write_image_folder(data / "labelled", classes=("cat", "dog"), per_class=8),
        "PHOTOS": pool_images(data / "photos"),
        "NEW_PHOTOS": pool_images(data / "more-photos", n=5),
    }
    lines = page_commands().splitlines()
    commands = [
        f"{line.split('=')[0]}={folders[line.split('=')[0]]}" if line.split("=")[0] in folders else line
        for line in lines
    ]
    assert sum(line != given for line, given in zip(commands, lines, strict=True)) == len(folders), commands
    env = command_env()
    for git in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *git], cwd=root, env=env, check=True)
    # A hang guard, not a speed check: about two minutes on an idle 2-core machine.
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(commands)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root, data, result.stdout


def test_the_study_pretrains_on_the_pool_and_reports_what_it_cannot_measure(study):
    root, data, printed = study
    report = (root / "results" / "results.md").read_text()
    for needle in (
        "Table II",
        "| P3 |",
        "## Controls — did pretraining learn anything?",
        "| Raw pixels | pixels |",
        "Fully supervised baseline",
        f"Pretraining data: the unlabelled pool `{data / 'photos'}`",
        "NMI, ARI, purity and same-class pairs per batch: not measured: unlabelled pool",
    ):
        assert needle in report and needle in printed, needle  # `cat results/results.md` printed it
    assert "NMI 0" not in report and "Same-class pairs per batch (" not in report
    for figure in ("accuracy_by_seed.png", "paired_differences.png"):
        assert (root / "results" / figure).stat().st_size > 1000
    cluster = json.loads((root / "metrics" / "seed0" / "cluster.json").read_text())
    assert cluster["true_label_diagnostics"] == "not measured: unlabelled pool" and "nmi" not in cluster
    for method in ("simclr", "gsimclr"):
        pretrain = json.loads((root / "metrics" / "seed0" / f"pretrain_{method}.json").read_text())
        assert "same_class_pairs_per_batch" not in pretrain and "knn_val_acc" in pretrain  # the monitor is labelled
    with open(root / "artifacts" / "seed0" / "pseudo_labels.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    pool_files = sorted(str(p.relative_to(data / "photos")) for p in (data / "photos").rglob("IMG_*.jpg"))
    assert sorted(row["path"] for row in table) == pool_files  # every pool image, keyed by its path; no hidden file
    logged = [line for log in (root / ".gsimclr" / "logs").glob("*.log") for line in log.read_text().splitlines()]
    assert not [line for line in logged if "Warning" in line or "WARNING" in line], logged
    assert "P3 embeddings: (5, " in printed


def test_the_embeddings_equal_what_the_registered_model_predicts(study):
    root, data, _ = study
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    out = root / "embeddings"
    with open(out / "index.csv", newline="") as handle:
        paths = [row["image"] for row in csv.DictReader(handle)]
    assert len(paths) == 5
    photos = data / "more-photos"
    images = decode_files([str(photos / p) for p in paths], 8, "error", photos).images.numpy()
    predicted = mlflow.pyfunc.load_model("models:/gsimclr-imagefolder-labelled-gsimclr@newest").predict(images)
    embedded = np.concatenate([np.load(out / f"{tap}.npy") for tap in ("P1", "P2", "P3")], axis=1)
    assert embedded.shape == predicted.shape and np.allclose(embedded, predicted, atol=1e-5)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("empty", "holds no image files (expected unlabelled images at any depth"),
        ("class-folders-only", "holds no image files (expected unlabelled images at any depth"),
        ("labelled-dataset", "holds train/ and test/: that is a labelled dataset (data.root)"),
        ("test-images", "are test images (first: "),
    ],
)
def test_a_pool_that_is_not_one_is_a_one_line_error_and_nothing_is_prepared(tmp_path, monkeypatch, layout, expected):
    monkeypatch.chdir(tmp_path)
    labelled = write_image_folder(tmp_path / "labelled", classes=("cat", "dog"), per_class=4)
    pool = tmp_path / "pool"
    if layout == "class-folders-only":
        for name in ("cat", "dog"):
            (pool / name).mkdir(parents=True)
    elif layout == "labelled-dataset":
        shutil.copytree(labelled, pool)
    elif layout == "test-images":
        shutil.copytree(labelled / "test", pool)
    else:
        pool.mkdir()
    write_params(tmp_path / "params.yaml", pool_params(labelled, pool))
    result = runner.invoke(app, ["--device", "cpu", "prepare"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not (tmp_path / "prepared").exists() or not any((tmp_path / "prepared").rglob("*.npy"))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"guidance": {"labels": "oracle", "batches": "random", "false_negatives": "attract"}}, "data.pool has none"),
        ({"data": {"name": "digits", "pool": "photos"}}, "pair it with a colour labelled dataset"),
    ],
)
def test_settings_a_pool_cannot_serve_are_refused(tmp_path, monkeypatch, change, expected):
    monkeypatch.chdir(tmp_path)
    params = pool_params(tmp_path / "labelled", tmp_path / "pool")
    for section, values in change.items():
        params[section] = {**params[section], **values}
    write_params(tmp_path / "params.yaml", params)
    result = runner.invoke(app, ["prepare"])
    assert result.exit_code == 2 and expected in result.output and len(result.output.strip().splitlines()) == 1
