"""Pseudo labels refreshed from the model: when they refresh, and that a resumed run guides as an uninterrupted one."""

import numpy as np
import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score
from torch import nn

from gsimclr.method.pseudo_labels import PseudoLabels
from gsimclr.method.samplers import GuidedBatchSampler
from gsimclr.training.engine import LoopConfig, Training, fit

X = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
INITIAL = np.arange(64) % 4


def test_labels_refresh_at_the_start_of_each_period_and_only_once():
    calls = []

    def embed():
        calls.append(1)
        return np.random.default_rng(len(calls)).normal(size=(64, 3))

    labels = PseudoLabels(INITIAL, refresh_every=2, k=4, n_init=1, seed=0, embed=embed)
    seen = {epoch: labels.refresh_if_due(epoch).copy() for epoch in range(1, 6)}
    assert [labels.due(e) for e in range(1, 6)] == [False, False, True, False, True]
    assert len(calls) == 2 and labels.refreshed_at == 5
    assert np.array_equal(seen[1], INITIAL) and np.array_equal(seen[2], INITIAL)
    assert np.array_equal(seen[3], seen[4]) and not np.array_equal(seen[3], INITIAL)
    labels.refresh_if_due(5)
    assert len(calls) == 2  # asking again within the epoch does not re-cluster
    never = PseudoLabels(INITIAL, refresh_every=0, k=4, n_init=1, seed=0, embed=embed)
    assert all(np.array_equal(never.refresh_if_due(e), INITIAL) for e in range(1, 6))


def make_run():
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    labels = PseudoLabels(
        INITIAL, refresh_every=2, k=4, n_init=1, seed=0, embed=lambda: model(X).detach().numpy().astype(np.float64)
    )

    def step(idx: np.ndarray):
        z = model(X[idx])
        return {"loss": ((z - z.mean(0)) ** 2).mean() + (z.sum(1) - 1).pow(2).mean()}

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = lambda epoch: GuidedBatchSampler(labels.refresh_if_due(epoch), 16, 0).batches(epoch)  # noqa: E731
    return model, labels, Training(model=model, optimizer=optimizer, batches=batches, step=step, state=labels)


def test_resumed_run_continues_with_the_refreshed_labels(tmp_path):
    model_a, labels_a, run_a = make_run()
    fit(run_a, LoopConfig("a", epochs=5, seed=0))

    checkpoint = tmp_path / "resume.pt"
    _, labels_b, run_b = make_run()
    fit(run_b, LoopConfig("b", epochs=3, seed=0, checkpoint=checkpoint, config_hash="h"))
    refreshed_at_3 = labels_b.current.copy()
    assert labels_b.refreshed_at == 3 and not np.array_equal(refreshed_at_3, INITIAL)

    model_c, labels_c, run_c = make_run()
    seen = []
    run_c.batches = lambda epoch, inner=run_c.batches: (inner(epoch), seen.append(labels_c.current.copy()))[0]
    fit(run_c, LoopConfig("c", epochs=5, seed=0, checkpoint=checkpoint, config_hash="h"))
    assert np.array_equal(seen[0], refreshed_at_3)  # epoch 4 guided by epoch 3's labels, not the initial ones
    assert labels_c.refreshed_at == labels_a.refreshed_at == 5
    assert np.array_equal(labels_c.current, labels_a.current)
    for a, c in zip(model_a.state_dict().values(), model_c.state_dict().values(), strict=True):
        assert torch.equal(a, c)


@pytest.mark.parametrize("every", [1, 3])
def test_refresh_uses_the_seeded_kmeans(every):
    features = np.random.default_rng(0).normal(size=(64, 3))
    first = PseudoLabels(INITIAL, every, 4, 1, 7, embed=lambda: features).refresh_if_due(1 + every)
    again = PseudoLabels(INITIAL, every, 4, 1, 7, embed=lambda: features).refresh_if_due(1 + every)
    assert np.array_equal(first, again) and len(np.unique(first)) == 4


def blobs(groups: np.ndarray) -> np.ndarray:
    """Tight, far-apart clusters of embeddings, one per value of `groups`."""
    centres = np.eye(8)[groups] * 10.0
    return centres + np.random.default_rng(0).normal(scale=0.01, size=centres.shape)


def test_network_labels_wait_for_the_warm_up_then_follow_the_network():
    first, later = np.arange(64) % 4, np.arange(64) // 16  # what the "network" separates, before and after
    network = {"groups": first}
    labels = PseudoLabels(
        None, refresh_every=2, k=4, n_init=1, seed=0, embed=lambda: blobs(network["groups"]), warmup_epochs=2
    )
    assert labels.refresh_if_due(1) is None and labels.refresh_if_due(2) is None  # plain SimCLR
    assert [labels.due(e) for e in range(1, 8)] == [False, False, True, False, True, False, True]
    at_3 = labels.refresh_if_due(3).copy()
    assert normalized_mutual_info_score(first, at_3) == pytest.approx(1.0)
    network["groups"] = later
    assert np.array_equal(labels.refresh_if_due(4), at_3)  # not due: the labels of epoch 3 go on
    assert normalized_mutual_info_score(later, labels.refresh_if_due(5)) == pytest.approx(1.0)


def test_autoencoder_labels_start_after_the_warm_up_and_refresh_a_period_later():
    labels = PseudoLabels(
        INITIAL, refresh_every=3, k=4, n_init=1, seed=0, embed=lambda: blobs(INITIAL), warmup_epochs=1
    )
    assert labels.refresh_if_due(1) is None
    assert np.array_equal(labels.refresh_if_due(2), INITIAL)
    assert [labels.due(e) for e in range(1, 9)] == [False, False, False, False, True, False, False, True]


def test_network_labels_need_a_refresh_period():
    with pytest.raises(ValueError, match="refresh_every"):
        PseudoLabels(None, refresh_every=0, k=4, n_init=1, seed=0, embed=lambda: blobs(INITIAL))


def test_incremental_detection_labels_the_images_nearest_their_centre_first():
    """Chen et al. 2022: at a refresh only the confident share of each cluster keeps its label (the rest are classes
    of their own, never a false negative), and the share grows with the epoch."""
    groups = np.arange(64) % 4
    features = blobs(groups)
    outliers = np.arange(8)  # two per cluster (i % 4), pushed away from their centre
    features[outliers] += 0.5 * np.eye(8)[4]
    share = {3: 0.75, 5: 1.0}
    labels = PseudoLabels(
        None, refresh_every=2, k=4, n_init=1, seed=0, embed=lambda: features, warmup_epochs=2, confident=share.get
    )
    at_3 = labels.refresh_if_due(3).copy()
    kept = np.flatnonzero(np.bincount(at_3)[at_3] > 1)  # the images in a cluster, not on their own
    assert len(kept) == 48 and not set(outliers) & set(kept)  # 12 of 16 per cluster, the outliers not among them
    assert normalized_mutual_info_score(groups[kept], at_3[kept]) == pytest.approx(1.0)
    assert len(np.unique(at_3)) == 4 + 16 and np.bincount(at_3)[4:].max() == 1  # the others: singletons
    assert normalized_mutual_info_score(groups, labels.refresh_if_due(5)) == pytest.approx(1.0)  # all labelled


def test_a_confident_share_needs_refreshed_labels():
    from pydantic import ValidationError

    from gsimclr.settings.config import GuidanceConfig

    with pytest.raises(ValidationError, match="confident_share"):
        GuidanceConfig(confident_share=0.5)
    assert GuidanceConfig(labels="network", refresh_every=2, false_negatives="cancel", confident_share=0.5)
