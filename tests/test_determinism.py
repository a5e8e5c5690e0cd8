"""Same seed, same results: two independent runs of train + cluster give identical pseudo labels."""

import torch

from conftest import TINY_PARAMS, write_params
from gsimclr.config import load_params
from gsimclr.layout import Layout
from gsimclr.stages.cluster import cluster
from gsimclr.stages.context import StageContext
from gsimclr.stages.train_autoencoder import train_autoencoder


def run_once(root, monkeypatch, seed=0):
    root.mkdir()
    monkeypatch.chdir(root)
    params = load_params(write_params(root / "params.yaml", TINY_PARAMS))
    layout = Layout().for_seed(seed)
    train_autoencoder(StageContext(params, seed, layout, torch.device("cpu")))
    torch.manual_seed(12345)  # whatever ran before must not matter
    cluster(StageContext(params, seed, layout, torch.device("cpu")))
    return layout.pseudo_labels.read_text()


def test_same_seed_gives_identical_pseudo_labels(tmp_path, monkeypatch):
    torch.manual_seed(1)
    first = run_once(tmp_path / "a", monkeypatch)
    torch.manual_seed(2)
    second = run_once(tmp_path / "b", monkeypatch)
    assert first == second
    assert run_once(tmp_path / "c", monkeypatch, seed=1) != first
