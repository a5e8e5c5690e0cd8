"""Same seed, same results: two independent runs of train + cluster give identical pseudo labels."""

import torch
from conftest import TINY_PARAMS, write_params

from gsimclr.pipeline.layout import Layout
from gsimclr.settings.loading import load_params
from gsimclr.stages.autoencoder import train_autoencoder
from gsimclr.stages.cluster import cluster
from gsimclr.stages.context import seed_everything, stage_context


def run_once(root, monkeypatch, seed=0):
    root.mkdir()
    monkeypatch.chdir(root)
    params = load_params(write_params(root / "params.yaml", TINY_PARAMS))
    layout = Layout().for_seed(seed)
    seed_everything(seed)  # what the CLI does before every stage
    train_autoencoder(stage_context(params, "autoencoder", None, seed, layout, torch.device("cpu")))
    torch.manual_seed(12345)  # whatever ran before must not matter
    seed_everything(seed)
    cluster(stage_context(params, "cluster", None, seed, layout, torch.device("cpu")))
    return layout.pseudo_labels.read_text()


def test_same_seed_gives_identical_pseudo_labels(tmp_path, monkeypatch):
    torch.manual_seed(1)
    first = run_once(tmp_path / "a", monkeypatch)
    torch.manual_seed(2)
    second = run_once(tmp_path / "b", monkeypatch)
    assert first == second
    assert run_once(tmp_path / "c", monkeypatch, seed=1) != first


def test_pixel_baseline_pseudo_labels_need_no_autoencoder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = load_params(
        write_params(
            tmp_path / "params.yaml", dict(TINY_PARAMS, cluster={**TINY_PARAMS["cluster"], "features": "pixels"})
        )
    )
    layout = Layout().for_seed(0)
    metrics = cluster(stage_context(params, "cluster", None, 0, layout, torch.device("cpu")))
    assert not layout.autoencoder.exists() and metrics.clusters == TINY_PARAMS["cluster"]["k"]
    assert len(layout.pseudo_labels.read_text().splitlines()) == 1 + 1437
