"""The scores `gsimclr label-quality` prints, against brute force over every pair."""

import itertools

import numpy as np
import pytest

from gsimclr.evaluation.label_quality import batch_suspect_scores, cluster_scores, neighbour_agreement, pair_scores


def brute_pairs(pseudo, true):
    pairs = list(itertools.combinations(range(len(true)), 2))
    same_cluster = [(i, j) for i, j in pairs if pseudo[i] == pseudo[j]]
    same_class = [(i, j) for i, j in pairs if true[i] == true[j]]
    both = set(same_cluster) & set(same_class)
    return len(both) / len(same_cluster), len(both) / len(same_class)


def test_pair_precision_and_recall_count_every_pair():
    rng = np.random.default_rng(0)
    true, pseudo = rng.integers(0, 4, 60), rng.integers(0, 7, 60)
    scores = pair_scores(pseudo, true)
    assert (scores["pair_precision"], scores["pair_recall"]) == pytest.approx(brute_pairs(pseudo, true))


def test_neighbour_agreement_equals_a_sort_of_every_row():
    rng = np.random.default_rng(1)
    features, true = rng.normal(size=(50, 6)), rng.integers(0, 3, 50)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    order = np.argsort(-similarity, axis=1, kind="stable")
    expected = {n: float((true[order[:, :n]] == true[:, None]).mean()) for n in (1, 3, 10)}
    assert neighbour_agreement(features, true, [1, 3, 10], chunk=7) == pytest.approx(expected)


def test_separable_classes_score_perfectly_and_shuffled_labels_at_chance():
    rng = np.random.default_rng(2)
    true = np.repeat(np.arange(4), 30)
    centres = np.eye(8)[:4] * 10
    features = centres[true] + rng.normal(scale=0.1, size=(120, 8))
    assert cluster_scores(features, true, 4, seed=0) == pytest.approx(
        {"nmi": 1.0, "purity": 1.0, "pair_precision": 1.0, "pair_recall": 1.0}
    )
    assert neighbour_agreement(features, true, [5]) == {5: 1.0}
    shuffled = rng.permutation(true)
    assert neighbour_agreement(features, shuffled, [5])[5] < 0.5
    assert cluster_scores(features, shuffled, 4, seed=0)["pair_precision"] < 0.5


def test_more_neighbours_than_images_is_refused():
    with pytest.raises(ValueError, match="need more than"):
        neighbour_agreement(np.ones((3, 2)), np.zeros(3, int), [3])


def test_batch_suspect_scores_count_every_suspected_pair_of_every_batch():
    rng = np.random.default_rng(3)
    features, true = rng.normal(size=(41, 5)), rng.integers(0, 3, 41)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    order = np.random.default_rng(7).permutation(41)
    suspected = right = same = 0
    for batch in (order[0:10], order[10:20], order[20:30], order[30:40]):  # the 41st image is left over
        similarity = unit[batch] @ unit[batch].T
        np.fill_diagonal(similarity, -np.inf)
        top = np.argsort(-similarity, axis=1, kind="stable")[:, :2]
        pairs = {tuple(sorted((i, j))) for i in range(10) for j in top[i]}
        suspected += len(pairs)
        right += sum(true[batch[i]] == true[batch[j]] for i, j in pairs)
        same += sum(true[batch[i]] == true[batch[j]] for i in range(10) for j in range(i + 1, 10))
    got = batch_suspect_scores(features, true, 10, [2], seed=7)[2]
    assert got == pytest.approx({"precision": right / suspected, "recall": right / same})
