"""Splits on the device: streamed batches (read ahead from the memory map) equal the resident ones bit
for bit, only the batches in flight are held, and a stage gives the same results either way."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY_PARAMS, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.data import device_images
from gsimclr.data.device_images import ResidentImages, StreamedImages, reading_ahead
from gsimclr.pipeline.layout import Layout

CPU = torch.device("cpu")
runner = CliRunner()


@pytest.fixture
def mapped(tmp_path) -> torch.Tensor:
    images = np.random.default_rng(0).integers(0, 256, (50, 1, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    return torch.from_numpy(np.load(tmp_path / "x.npy", mmap_mode="c"))


def test_streamed_batches_equal_resident_ones_in_and_out_of_read_ahead(mapped):
    resident, streamed = ResidentImages(mapped, CPU), StreamedImages(mapped, CPU, ahead=2)
    batches = [np.random.default_rng(i).permutation(50)[:7] for i in range(5)]
    streamed.read_ahead(batches)
    assert len(streamed._in_flight) == 2 and len(streamed._pending) == 3
    for batch in batches[:2]:
        assert torch.equal(streamed[batch], resident[batch])
    unscheduled = np.array([3, 1, 4])  # out of turn (a validation pass): gathered now, the queue untouched
    assert torch.equal(streamed[unscheduled], resident[unscheduled])
    assert len(streamed._in_flight) == 2
    for batch in batches[2:]:
        assert torch.equal(streamed[batch], resident[batch])
    assert not streamed._in_flight and not streamed._pending
    assert torch.equal(streamed[3], resident[3]) and torch.equal(streamed[:2], resident[:2])
    assert len(streamed) == len(resident) == 50 and streamed.shape == resident.shape


def test_a_new_epoch_replaces_what_the_last_left_unread(mapped):
    streamed = StreamedImages(mapped, CPU, ahead=3)
    streamed.read_ahead([np.arange(5), np.arange(5, 10), np.arange(10, 15)])
    streamed[np.arange(5)]  # an epoch cut short (an exception): two batches were never read
    draw = reading_ahead(streamed, lambda epoch: [np.arange(20, 25) + epoch])
    assert [b.tolist() for b in draw(1)] == [list(range(21, 26))]
    assert len(streamed._in_flight) == 1 and np.array_equal(streamed._in_flight[0][0], np.arange(21, 26))
    assert torch.equal(streamed[np.arange(21, 26)], mapped[21:26])


def test_auto_streams_only_a_split_over_a_quarter_of_free_memory(mapped, monkeypatch):
    size = mapped.numel()
    monkeypatch.setattr(device_images, "free_memory", lambda device: 4 * size)
    assert isinstance(device_images.device_images(mapped, CPU), ResidentImages)
    monkeypatch.setattr(device_images, "free_memory", lambda device: 4 * size - 1)
    assert isinstance(device_images.device_images(mapped, CPU), StreamedImages)
    assert isinstance(device_images.device_images(mapped, CPU, stream="off"), ResidentImages)
    monkeypatch.setattr(device_images, "free_memory", lambda device: 1 << 40)
    assert isinstance(device_images.device_images(mapped, CPU, stream="on"), StreamedImages)


def test_a_stage_streamed_gives_the_same_results_as_resident(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", TINY_PARAMS)
    assert runner.invoke(app, ["--params", str(params), "prepare"]).exit_code == 0
    gathered = []
    gather = StreamedImages._gather
    monkeypatch.setattr(StreamedImages, "_gather", lambda self, index: gathered.append(1) or gather(self, index))
    metrics = {}
    for stream in ("off", "on"):
        args = ["--params", str(params), "--device", "cpu", "--stream", stream, "autoencoder", "--restart"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        metrics[stream] = json.loads(Layout().for_seed(0).metrics("autoencoder").read_text())
        assert bool(gathered) == (stream == "on")  # the streamed run really streamed, the other did not
    assert metrics["on"] == metrics["off"] and metrics["on"]["best_epoch"] >= 1


def test_an_unknown_stream_choice_is_one_line(tiny_params):
    result = runner.invoke(app, ["--params", str(tiny_params), "--stream", "sometimes", "autoencoder"])
    assert result.exit_code == 2 and "sometimes" in result.output and "Traceback" not in result.output


def test_the_network_sees_the_central_crop_of_images_stored_larger(mapped):
    for images in (ResidentImages(mapped, CPU, size=6), StreamedImages(mapped, CPU, size=6)):
        batch = np.array([4, 0, 9])
        assert torch.equal(images[batch], mapped[batch][..., 1:7, 1:7])
        assert torch.equal(images.stored(batch), mapped[batch]) and images[2].shape == (1, 6, 6)


def test_a_study_with_images_stored_larger_trains_at_the_image_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = {**TINY_PARAMS["data"], "stored_size": 12}
    params = write_params(tmp_path / "params.yaml", {**TINY_PARAMS, "data": data})
    for command in (
        ["prepare"],
        ["autoencoder"],
        ["pretrain", "--method", "simclr"],
        ["evaluate", "--method", "simclr"],
    ):
        result = runner.invoke(app, ["--params", str(params), "--device", "cpu", *command])
        assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "prepared" / "digits-12px-test0.2" / "train_x.npy").shape[-2:] == (12, 12)
    scores = json.loads(Layout().for_seed(0).metrics("evaluate", "simclr").read_text())
    assert 0.0 < scores["linear_P3/test_acc"] <= 1.0


def test_stored_smaller_than_the_input_is_one_line(tmp_path):
    data = {**TINY_PARAMS["data"], "stored_size": 6}
    params = write_params(tmp_path / "params.yaml", {**TINY_PARAMS, "data": data})
    result = runner.invoke(app, ["--params", str(params), "prepare"])
    assert result.exit_code == 2 and "data.stored_size=6 is smaller than data.image_size=8" in result.output
    assert "Traceback" not in result.output
