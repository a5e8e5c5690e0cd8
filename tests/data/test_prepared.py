"""`gsimclr prepare`: the dataset decoded once into memory-mapped arrays that every stage reads; a
damaged array is a one-line error with a re-prepare hint, never trained on."""

import copy
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import yaml
from conftest import TINY_PARAMS, write_image_folder, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.data import prepared as prepared_module
from gsimclr.data.loaders import load_dataset
from gsimclr.data.prepared import dataset_key, load, read_prepared
from gsimclr.pipeline.layout import Layout
from gsimclr.settings.config import DataConfig
from gsimclr.system.errors import UserError

runner = CliRunner()
CFG = DataConfig(**TINY_PARAMS["data"])


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", TINY_PARAMS)
    result = runner.invoke(app, ["--params", str(params), "prepare"])
    assert result.exit_code == 0, result.output
    return params, Layout().prepared_data(dataset_key(CFG))


def test_stages_read_the_prepared_arrays_memory_mapped(prepared):
    _, folder = prepared
    assert sorted(p.name for p in folder.iterdir()) == [
        "meta.json",
        "test_x.npy",
        "test_y.npy",
        "train_x.npy",
        "train_y.npy",
    ]
    decoded, mapped = load_dataset(CFG), load(CFG, folder, folder.parent / "stamp.json")
    assert mapped.digest == decoded.digest and mapped.classes == decoded.classes
    assert np.array_equal(mapped.test_x.numpy(), decoded.test_x.numpy())
    assert isinstance(np.load(folder / "train_x.npy", mmap_mode="c"), np.memmap)


def test_a_truncated_array_is_one_line_with_a_re_prepare_hint(prepared):
    params, folder = prepared
    path = folder / "train_x.npy"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"truncated.*re-run `gsimclr prepare`"):
        read_prepared(folder)
    result = runner.invoke(app, ["--params", str(params), "--device", "cpu", "train"])
    assert result.exit_code == 2 and "re-run `gsimclr prepare`" in result.output
    assert "Traceback" not in result.output and not Layout().for_seed(0).autoencoder.exists()


@pytest.mark.parametrize("name", ["train_x", "train_y", "test_x", "test_y"])
def test_every_edited_array_is_caught_by_its_digest(prepared, name):
    """Labels too: test labels shifted by one (same shape, same dtype) once scored 0.28 % and exited 0."""
    params, folder = prepared
    array = np.load(folder / f"{name}.npy")
    if name.endswith("_y"):
        array = (array + 1) % len(set(array.tolist()))
    else:
        array[0, 0, 0, 0] ^= 1
    np.save(folder / f"{name}.npy", array)
    with pytest.raises(UserError, match="does not match its digest"):
        read_prepared(folder)
    result = runner.invoke(app, ["--params", str(params), "--device", "cpu", "evaluate", "--method", "pixels"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "does not match its digest" in result.output
    assert not Layout().for_seed(0).metrics("evaluate", "pixels").exists()


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (b"[]", "expected a mapping|valid dictionary"),
        (b"\xff\xfe{", "not UTF-8"),
        (b'{"classes": ["a"]}', "digest"),
    ],
)
def test_a_malformed_meta_json_is_one_line(prepared, meta, message):
    _, folder = prepared
    (folder / "meta.json").write_bytes(meta)
    with pytest.raises(UserError, match=message):
        read_prepared(folder)


def test_labels_outside_the_class_list_are_refused(prepared):
    _, folder = prepared
    meta = json.loads((folder / "meta.json").read_text())
    meta["classes"] = meta["classes"][:3]  # fewer classes than the labels use
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="labels outside the 3 classes"):
        read_prepared(folder)


def image_folder_params(tmp_path, root) -> dict:
    params = copy.deepcopy(TINY_PARAMS)
    params["data"] = {"name": "imagefolder", "root": str(root), "image_size": 8, "val_fraction": 0.25}
    return params


def test_two_roots_of_one_name_never_share_a_prepared_folder(tmp_path, monkeypatch):
    """Prepared from set1/imgs, evaluated with data.root set2/imgs: once set1's metrics, exit 0."""
    monkeypatch.chdir(tmp_path)
    one = write_image_folder(tmp_path / "set1" / "imgs", classes=("a", "b", "c"))
    two = write_image_folder(tmp_path / "set2" / "imgs", classes=("x", "y"))
    first = write_params(tmp_path / "one.yaml", image_folder_params(tmp_path, one))
    assert runner.invoke(app, ["--params", str(first), "prepare"]).exit_code == 0
    keys = {dataset_key(DataConfig(**image_folder_params(tmp_path, root)["data"])) for root in (one, two)}
    assert len(keys) == 2
    second = write_params(tmp_path / "two.yaml", image_folder_params(tmp_path, two))
    result = runner.invoke(app, ["--params", str(second), "--device", "cpu", "evaluate", "--method", "pixels"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics" / "seed0" / "evaluate_pixels.json").read_text())
    assert "linear_pixels/test_acc/class1" in metrics and "linear_pixels/test_acc/class2" not in metrics


def test_a_root_whose_files_changed_since_prepare_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = write_image_folder(tmp_path / "imgs")
    params = write_params(tmp_path / "params.yaml", image_folder_params(tmp_path, root))
    assert runner.invoke(app, ["--params", str(params), "prepare"]).exit_code == 0
    shutil.copy(root / "train" / "cat" / "0.jpg", root / "train" / "cat" / "extra.jpg")
    result = runner.invoke(app, ["--params", str(params), "--device", "cpu", "evaluate", "--method", "pixels"])
    assert result.exit_code == 2 and "changed since they were prepared" in result.output, result.output


def test_the_same_files_copied_again_with_new_times_are_still_the_prepared_dataset(tmp_path, monkeypatch):
    """A remount or `cp` without -p gives every file a new modification time: the bytes decide, not the times."""
    monkeypatch.chdir(tmp_path)
    root = write_image_folder(tmp_path / "imgs")
    params = write_params(tmp_path / "params.yaml", image_folder_params(tmp_path, root))
    assert runner.invoke(app, ["--params", str(params), "prepare"]).exit_code == 0
    for path in root.rglob("*.jpg"):
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 86_400 * 10**9))
    result = runner.invoke(app, ["--params", str(params), "--device", "cpu", "evaluate", "--method", "pixels"])
    assert result.exit_code == 0, result.output


def test_an_edit_that_keeps_size_and_gets_new_times_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = write_image_folder(tmp_path / "imgs")
    params = write_params(tmp_path / "params.yaml", image_folder_params(tmp_path, root))
    assert runner.invoke(app, ["--params", str(params), "prepare"]).exit_code == 0
    image = root / "train" / "cat" / "0.jpg"
    content = bytearray(image.read_bytes())
    content[-3] ^= 0xFF
    image.write_bytes(bytes(content))
    result = runner.invoke(app, ["--params", str(params), "--device", "cpu", "evaluate", "--method", "pixels"])
    assert result.exit_code == 2 and "changed since they were prepared" in result.output, result.output


def test_an_unchanged_listing_takes_the_fingerprint_from_its_stamp_without_reading_the_files(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "imgs")
    cfg = DataConfig(**image_folder_params(tmp_path, root)["data"])
    stamp = tmp_path / "stamp.json"
    fingerprint = prepared_module.stamped_fingerprint(cfg, stamp)
    assert fingerprint == prepared_module.source_fingerprint(cfg)
    monkeypatch.setattr(prepared_module, "source_fingerprint", lambda cfg: pytest.fail("read the files again"))
    assert prepared_module.confirmed_fingerprint(cfg, stamp) == fingerprint


def test_without_prepare_a_stage_decodes_the_dataset(tmp_path):
    assert load(CFG, tmp_path / "missing", tmp_path / "stamp.json").digest == load_dataset(CFG).digest


def test_the_digest_is_checked_in_chunked_reads_and_survives_a_re_prepare(prepared):
    params, folder = prepared
    decoded = load_dataset(CFG)
    assert read_prepared(folder).digest == decoded.digest
    for name in ("train_x", "test_y"):  # chunked file reads = the hash of the whole file
        path = folder / f"{name}.npy"
        assert prepared_module.file_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    meta = (folder / "meta.json").read_bytes()
    result = runner.invoke(app, ["--params", str(params), "prepare"])  # what every `dvc repro` does
    assert result.exit_code == 0 and (folder / "meta.json").read_bytes() == meta  # same output hash for DVC


def pool_params(tmp_path, root, pool):
    """The image-folder params with an unlabelled pool of 6 photos (two at depth 2)."""
    from PIL import Image

    for i in range(6):
        path = pool / ("a/b" if i % 3 == 0 else "") / f"p{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((10, 10, 3), 40 * i, np.uint8)).save(path)
    params = image_folder_params(tmp_path, root)
    return {**params, "data": {**params["data"], "pool": str(pool)}}


def test_a_pool_is_prepared_with_its_paths_and_its_changes_are_caught(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = write_image_folder(tmp_path / "imgs")
    params = write_params(tmp_path / "params.yaml", pool_params(tmp_path, root, tmp_path / "pool"))
    result = runner.invoke(app, ["--params", str(params), "prepare"])
    assert result.exit_code == 0 and "6 unlabelled pool images" in result.output, result.output
    cfg = DataConfig(**yaml.safe_load(params.read_text())["data"])
    folder = Layout().prepared_data(dataset_key(cfg))
    data = read_prepared(folder, prepared_module.source_fingerprint(cfg))
    assert data.pool is not None and data.unlabelled_x.shape == (6, 3, 8, 8)
    assert data.pool.paths == ("p1.png", "p2.png", "p4.png", "p5.png", "a/b/p0.png", "a/b/p3.png")
    assert data.digest != load_dataset(cfg.model_copy(update={"pool": None})).digest  # checkpoints re-key on it
    assert dataset_key(cfg) != dataset_key(cfg.model_copy(update={"pool": None}))  # its own prepared folder

    paths = json.loads((folder / "pool_paths.json").read_text())
    (folder / "pool_paths.json").write_text(json.dumps(paths[::-1]))
    with pytest.raises(UserError, match=r"pool_paths\.json does not match meta\.json"):
        read_prepared(folder, prepared_module.source_fingerprint(cfg))
    (tmp_path / "pool" / "p9.png").write_bytes((tmp_path / "pool" / "p1.png").read_bytes())  # a new photo
    result = runner.invoke(app, ["--params", str(params), "--device", "cpu", "evaluate", "--method", "pixels"])
    assert result.exit_code == 2 and "changed since they were prepared" in result.output, result.output
