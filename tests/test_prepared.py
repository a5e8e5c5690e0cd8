"""`gsimclr prepare`: the dataset decoded once into memory-mapped arrays that every stage reads; a
damaged array is a one-line error with a re-prepare hint, never trained on."""

import numpy as np
import pytest
from conftest import TINY_PARAMS, write_params
from typer.testing import CliRunner

from gsimclr import prepared as prepared_module
from gsimclr.cli import app
from gsimclr.config import DataConfig
from gsimclr.data import load_dataset
from gsimclr.errors import UserError
from gsimclr.layout import Layout
from gsimclr.prepared import dataset_key, load, read_prepared

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
    decoded, mapped = load_dataset(CFG), load(CFG, folder)
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


def test_an_edited_array_does_not_match_its_digest(prepared):
    _, folder = prepared
    array = np.load(folder / "train_x.npy")
    array[0, 0, 0, 0] ^= 1
    np.save(folder / "train_x.npy", array)
    with pytest.raises(UserError, match="do not match their digest"):
        read_prepared(folder)


def test_without_prepare_a_stage_decodes_the_dataset(tmp_path):
    assert load(CFG, tmp_path / "missing").digest == load_dataset(CFG).digest


def test_the_digest_is_checked_in_chunked_reads_and_survives_a_re_prepare(prepared):
    params, folder = prepared
    decoded = load_dataset(CFG)
    mapped = np.load(folder / "train_x.npy", mmap_mode="c"), np.load(folder / "train_y.npy", mmap_mode="c")
    assert prepared_module.arrays_digest(*mapped) == decoded.digest  # chunked file reads = the in-memory hash
    meta = (folder / "meta.json").read_bytes()
    result = runner.invoke(app, ["--params", str(params), "prepare"])  # what every `dvc repro` does
    assert result.exit_code == 0 and (folder / "meta.json").read_bytes() == meta  # same output hash for DVC
