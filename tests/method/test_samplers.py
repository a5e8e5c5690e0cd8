"""The guided sampler's guarantees, and that only the batch composition differs from random batches."""

import numpy as np
import pytest

from gsimclr.method.samplers import (
    BatchDiagnostics,
    EpochBatches,
    GuidedBatchSampler,
    RandomBatchSampler,
    batch_stats,
    expected_same_label_pairs,
    min_same_label_pairs,
    same_label_pairs,
)


def epoch_pairs(batches, labels):
    return sum(same_label_pairs(labels[b]) for b in batches)


def uneven_labels(seed=0, n=2000, k=64):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.2, 1.8, k)  # cluster sizes vary about ninefold, as k-means' do
    return rng.choice(k, size=n, p=weights / weights.sum())


@pytest.mark.parametrize(
    "sampler",
    [
        GuidedBatchSampler(uneven_labels(), 64, seed=1),
        RandomBatchSampler(2000, 64, seed=1),
    ],
)
def test_every_index_exactly_once_per_epoch_and_equal_batch_sizes(sampler):
    for epoch in (1, 2, 7):
        batches = sampler.batches(epoch)
        assert len(batches) == len(sampler) == 32
        joined = np.concatenate(batches)
        assert np.array_equal(np.sort(joined), np.arange(2000))
        sizes = {len(b) for b in batches}
        assert max(sizes) - min(sizes) <= 1 and max(sizes) <= 64


def test_equal_clusters_give_one_image_per_cluster_per_batch():
    labels = np.repeat(np.arange(64), 20)
    np.random.default_rng(0).shuffle(labels)
    for epoch in (1, 2, 3):
        for batch in GuidedBatchSampler(labels, 64, seed=0).batches(epoch):
            assert len(batch) == 64
            assert len(np.unique(labels[batch])) == 64


def test_uneven_clusters_reach_the_minimum_and_beat_random():
    labels = uneven_labels()
    guided = GuidedBatchSampler(labels, 64, seed=3)
    random = RandomBatchSampler(len(labels), 64, seed=3)
    minimum = min_same_label_pairs(labels, len(guided))
    for epoch in (1, 2):
        assert epoch_pairs(guided.batches(epoch), labels) == minimum
    random_pairs = np.mean([epoch_pairs(random.batches(e), labels) for e in range(1, 6)])
    assert minimum < 0.5 * random_pairs


def test_round_robin_over_clusters_would_not_reach_the_minimum():
    """The official code's scheme (one image per cluster in turn, largest clusters last) is worse."""
    labels = uneven_labels()
    n_batches = -(-len(labels) // 64)
    queues = [list(np.flatnonzero(labels == c)) for c in range(labels.max() + 1)]
    order = []
    while any(queues):
        order += [q.pop() for q in queues if q]
    official = [np.array(order[i * 64 : (i + 1) * 64]) for i in range(n_batches)]
    assert epoch_pairs(official, labels) > min_same_label_pairs(labels, n_batches)


def test_batches_are_redrawn_each_epoch_and_reproducible_per_seed():
    labels = uneven_labels()
    sampler = GuidedBatchSampler(labels, 64, seed=5)
    first, second = sampler.batches(1), sampler.batches(2)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    again = GuidedBatchSampler(labels, 64, seed=5).batches(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other_seed = GuidedBatchSampler(labels, 64, seed=6).batches(1)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other_seed, strict=True))


def test_batch_stats_counts_distinct_labels_and_pairs():
    labels = np.array([0, 0, 0, 1, 2, 2])
    distinct, pairs = batch_stats([np.array([0, 1, 2, 3]), np.array([4, 5])], labels)
    assert distinct == pytest.approx((2 + 1) / 2)
    assert pairs == pytest.approx((3 + 1) / 2)


def test_pigeonhole_bound_matches_the_closed_form():
    """10 balanced classes, batches of 64: at least 10*C(6,2) + 4*6 = 174 same-class pairs per batch."""
    labels = np.repeat(np.arange(10), 64 * 5)  # 50 batches of 64
    assert min_same_label_pairs(labels, 50) / 50 == 174
    random_pairs = np.mean([same_label_pairs(b) for b in np.split(np.random.default_rng(0).permutation(labels), 50)])
    assert 190 < random_pairs < 214  # expectation 64*63/2 * (319/3199) ~ 201


def same_batches(first, second):
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_epoch_batches_guide_by_each_epochs_labels_and_ask_for_them_even_when_not_guided():
    asked = []

    def labels_of(epoch):
        asked.append(epoch)
        return np.arange(256) % 8 if epoch < 3 else np.arange(256) // 32  # a "refresh" before epoch 3

    guided = EpochBatches(256, 8, seed=0, pseudo_labels=labels_of)
    for epoch in (1, 3):
        expected = GuidedBatchSampler(labels_of(epoch), 8, seed=0).batches(epoch)
        assert same_batches(guided(epoch), expected)
    random = RandomBatchSampler(256, 8, seed=0).batches(3)
    asked.clear()
    ablation = EpochBatches(256, 8, seed=0, pseudo_labels=labels_of, guided=False)
    assert same_batches(ablation(3), random)
    assert asked == [3]  # the refresh still happens: diagnostics and checkpoints follow the new labels
    assert same_batches(EpochBatches(256, 8, seed=0)(3), random)


def test_batch_diagnostics_measure_true_pairs_and_pseudo_label_spread():
    true_labels = np.array([0, 0, 1, 1])
    batches = [np.array([0, 1]), np.array([2, 3])]
    # random pairs share a class with chance 4/12: 1/3 expected per batch of 2, so these batches hold 3x that
    assert BatchDiagnostics(true_labels)(batches) == {"same_class_pairs_per_batch": 1.0}
    guided = BatchDiagnostics(true_labels, lambda: np.array([0, 1, 0, 1]))(batches)
    assert guided == {
        "same_class_pairs_per_batch": 1.0,
        "distinct_pseudo_labels_per_batch": 2.0,
        "pseudo_label_nmi": pytest.approx(0.0),
    }
    detailed = BatchDiagnostics(true_labels, lambda: np.array([0, 1, 0, 1]), detailed=True)(batches)
    assert detailed["false_negatives_removed"] == pytest.approx(-2.0)
    assert "pseudo_pair_precision" not in detailed  # no batch holds two images of one pseudo label
    warming_up = BatchDiagnostics(true_labels, lambda: None, detailed=True)(batches)
    assert warming_up == {
        "same_class_pairs_per_batch": 1.0,
        "same_class_negatives_per_batch": 1.0,
        "false_negatives_removed": pytest.approx(-2.0),
    }


@pytest.mark.parametrize("loss_uses_labels,negatives,removed", [(True, 0.5, 5 / 12), (False, 1.0, -1 / 6)])
def test_batch_diagnostics_count_the_false_negatives_the_loss_still_sees(loss_uses_labels, negatives, removed):
    true_labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    pseudo = np.array([0, 0, 1, 5, 1, 5, 6, 7])
    batches = [np.array([0, 1, 2, 4]), np.array([3, 5, 6, 7])]
    # batch 1: (0, 1) same class and pseudo label, (2, 4) same pseudo label only; batch 2: (6, 7) same class
    # only, (3, 5) same pseudo label only. Random batches of 4 hold 6 x 8/56 = 6/7 same-class pairs.
    out = BatchDiagnostics(true_labels, lambda: pseudo, loss_uses_labels=loss_uses_labels, detailed=True)(batches)
    assert out["same_class_pairs_per_batch"] == 1.0
    assert out["same_class_negatives_per_batch"] == negatives
    assert out["false_negatives_removed"] == pytest.approx(removed)
    assert out["pseudo_pair_precision"] == pytest.approx(1 / 3)
    assert out["pseudo_label_purity"] == pytest.approx(6 / 8)


def test_expected_same_label_pairs_matches_random_batches():
    labels = np.arange(600) % 10
    sampler = RandomBatchSampler(600, 64, seed=0)
    drawn = np.mean([batch_stats(sampler.batches(e), labels)[1] for e in range(1, 41)])
    expected = expected_same_label_pairs(labels, [len(b) for b in sampler.batches(1)])
    assert drawn == pytest.approx(expected, rel=0.02)
