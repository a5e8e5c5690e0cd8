"""`gsimclr embed`: the registered encoder, a run's model and the checkpoint give the same embeddings, equal to what
`mlflow.pyfunc` predicts; every user mistake is one `error:` line, exit 2, nothing written."""

import csv
import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from conftest import TINY_PARAMS, write_image_folder, write_params
from PIL import Image
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.data.image_files import decode_files

runner = CliRunner()
TAPS = ("P1", "P2", "P3")


def gsimclr(*args: str):
    return runner.invoke(app, ["--device", "cpu", *args])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny RGB image-folder project with a pretrained SimCLR encoder (registered in its own MLflow store)."""
    root = tmp_path_factory.mktemp("embed")
    write_image_folder(root / "data", classes=("cat", "dog"), per_class=12, size=(20, 14))
    params = dict(TINY_PARAMS, data={**TINY_PARAMS["data"], "name": "imagefolder", "root": str(root / "data")})
    params["pretrain"] = {**params["pretrain"], "batch_size": 8}
    write_params(root / "params.yaml", params)
    return root


@pytest.fixture
def trained(project, monkeypatch):
    monkeypatch.chdir(project)
    if not (project / "artifacts" / "seed0" / "pretrain_simclr.pt").exists():
        for command in (["prepare"], ["pretrain", "--method", "simclr"]):
            result = gsimclr(*command)
            assert result.exit_code == 0, result.output
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    (name,) = [m.name for m in mlflow.MlflowClient().search_registered_models() if "imagefolder" in m.name]
    return project, f"models:/{name}@newest"


def photos(folder: Path, n: int = 5) -> Path:
    """Unlabelled images at several depths, of other sizes than training's, one hidden (not data)."""
    rng = np.random.default_rng(1)
    for i in range(n):
        path = folder / ("deep/er" if i % 2 else "") / f"photo{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (30 + i, 40, 3), dtype=np.uint8)).save(path)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(folder / ".hidden.png")
    return folder


def read_embeddings(out: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    with (out / "index.csv").open(newline="") as handle:
        names = [row["image"] for row in csv.DictReader(handle)]
    return {tap: np.load(out / f"{tap}.npy") for tap in TAPS}, names


def test_embed_a_folder_equals_pyfunc_predict_and_the_checkpoint(trained, tmp_path):
    root, uri = trained
    folder = photos(tmp_path / "photos")
    result = gsimclr("embed", str(folder), "--model", uri, "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    arrays, names = read_embeddings(tmp_path / "out")
    assert names == ["photo0.png", "photo2.png", "photo4.png", "deep/er/photo1.png", "deep/er/photo3.png"]
    assert [arrays[tap].shape for tap in TAPS] == [(5, 16), (5, 32), (5, 256)] and arrays["P3"].dtype == np.float32

    pyfunc = mlflow.pyfunc.load_model(uri)
    side = pyfunc.metadata.get_input_schema().inputs[0].shape[-1]
    pixels = decode_files([str(folder / name) for name in names], side, "skip", folder).images.numpy()
    predicted = pyfunc.predict(pixels)
    columns = pyfunc.metadata.metadata["gsimclr_taps"]
    for tap in TAPS:
        start, end = columns[tap]
        np.testing.assert_allclose(arrays[tap], predicted[:, start:end], atol=1e-5)

    checkpoint = root / "artifacts" / "seed0" / "pretrain_simclr.pt"
    result = gsimclr("embed", str(folder), "--model", str(checkpoint), "--out", str(tmp_path / "from_checkpoint"))
    assert result.exit_code == 0, result.output
    again, _ = read_embeddings(tmp_path / "from_checkpoint")
    for tap in TAPS:
        np.testing.assert_allclose(again[tap], arrays[tap], atol=1e-5)
    assert json.loads((tmp_path / "out" / "embed.json").read_text())["images"] == 5


def test_embed_a_prepared_split(trained, tmp_path):
    _, uri = trained
    result = gsimclr("embed", "--split", "test", "--model", uri, "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    arrays, names = read_embeddings(tmp_path / "out")
    assert len(arrays["P3"]) == len(names) == 24 and names[0] == "test[0]"


def failing(*args: str) -> str:
    result = gsimclr(*args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_bad_input_is_one_line_and_writes_nothing(trained, tmp_path):
    _, uri = trained
    out = tmp_path / "out"
    folder = photos(tmp_path / "photos")
    assert "no MLflow model at models:/nope@newest" in failing("embed", str(folder), "--model", "models:/nope@newest")
    assert "no such file" in failing("embed", str(folder), "--model", str(tmp_path / "missing.pt"), "--out", str(out))
    assert "inside the image folder" in failing("embed", str(folder), "--model", uri, "--out", str(folder / "emb"))
    assert not (folder / "emb").exists()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert "no image files" in failing("embed", str(tmp_path / "empty"), "--model", uri, "--out", str(out))
    torch.save({"model": {}, "method": "autoencoder"}, tmp_path / "autoencoder.pt")
    assert "not a pretraining checkpoint" in failing("embed", str(folder), "--model", str(tmp_path / "autoencoder.pt"))
    assert "one of them" in failing("embed", "--model", uri)
    assert not out.exists()


def test_a_model_for_other_images_is_refused(trained, tmp_path):
    """A prepared split at another size than the model's, and a grey-image model given a colour folder."""
    root, uri = trained
    other = yaml_params(root, tmp_path / "params12.yaml", image_size=12)
    assert gsimclr("--params", str(other), "prepare").exit_code == 0
    message = failing("--params", str(other), "embed", "--split", "train", "--model", uri, "--out", str(tmp_path / "o"))
    assert "was trained on 3x8x8 images" in message and "3x12x12" in message
    digits = write_params(tmp_path / "digits.yaml", TINY_PARAMS)
    for command in (["prepare"], ["pretrain", "--method", "simclr"]):
        assert gsimclr("--params", str(digits), *command).exit_code == 0
    grey = root / "artifacts" / "seed0" / "pretrain_simclr.pt"
    message = failing("embed", str(photos(tmp_path / "photos")), "--model", str(grey), "--out", str(tmp_path / "o"))
    assert "takes 1-channel images" in message
    assert not (tmp_path / "o").exists()


def yaml_params(root: Path, path: Path, image_size: int) -> Path:
    import yaml

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["image_size"] = image_size
    return write_params(path, params)
