"""Batch samplers: the only thing that differs between SimCLR and G-SimCLR.

Both samplers cut an epoch of N images into the same `ceil(N / batch_size)` batches whose sizes differ by
at most one, and both are re-drawn every epoch from `(seed, epoch)`, so a resumed run sees the same
batches as an uninterrupted one and no state needs checkpointing.

The guided sampler is stratified systematic sampling: images are shuffled within each pseudo-label
cluster, clusters are laid end to end in a random order, and the sequence is dealt round-robin into
the epoch's batches. A cluster of size s then lands in s consecutive (mod n_batches) batches, i.e.
floor(s / n_batches) or ceil(s / n_batches) times per batch: the fewest same-cluster pairs any
partition allows. With equal clusters and batch size k, every batch holds exactly one image per
cluster. The official code's round-robin over clusters instead leaves the largest clusters for the
final batches, where they collide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from gsimclr.method.clustering import cluster_quality


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """A numpy generator for one epoch, derived only from (seed, epoch): a resumed run draws the same."""
    return np.random.default_rng([seed, epoch])


def _deal(order: np.ndarray, n_batches: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Deal `order` round-robin into `n_batches` batches from a random start; shuffle within batches."""
    start = int(rng.integers(n_batches))
    slot = (np.arange(len(order)) + start) % n_batches
    batches = [order[slot == b] for b in range(n_batches)]
    for batch in batches:
        rng.shuffle(batch)
    return [batches[b] for b in rng.permutation(n_batches)]


@dataclass(frozen=True)
class RandomBatchSampler:
    """SimCLR: a fresh random partition of the dataset into batches every epoch."""

    n_items: int
    batch_size: int
    """The last batch of an epoch is smaller when `batch_size` does not divide `n_items`."""
    seed: int

    def __len__(self) -> int:
        return (self.n_items + self.batch_size - 1) // self.batch_size

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The batches of `epoch`, each an array of dataset indices."""
        rng = epoch_rng(self.seed, epoch)
        return _deal(rng.permutation(self.n_items), len(self), rng)


@dataclass(frozen=True)
class GuidedBatchSampler:
    """G-SimCLR: each batch is a sample without replacement stratified by pseudo label."""

    pseudo_labels: np.ndarray
    batch_size: int
    seed: int

    def __len__(self) -> int:
        return (len(self.pseudo_labels) + self.batch_size - 1) // self.batch_size

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The batches of `epoch`, each an array of dataset indices."""
        rng = epoch_rng(self.seed, epoch)
        clusters = [np.flatnonzero(self.pseudo_labels == c) for c in np.unique(self.pseudo_labels)]
        for members in clusters:
            rng.shuffle(members)
        order = np.concatenate([clusters[c] for c in rng.permutation(len(clusters))])
        return _deal(order, len(self), rng)


@dataclass(frozen=True)
class EpochBatches:
    """Epoch -> that epoch's batches of one pretraining run: random for SimCLR, stratified by the epoch's
    pseudo labels for G-SimCLR (random again under the `guidance.batches: random` ablation)."""

    n_items: int
    batch_size: int
    seed: int
    pseudo_labels: Optional[Callable[[int], Optional[np.ndarray]]] = None
    """Epoch -> the labels to stratify by (G-SimCLR; None: random batches, e.g. during warm-up); asked every
    epoch, so a due refresh happens even when `guided` is off and the diagnostics and checkpoint follow the
    refreshed labels."""
    guided: bool = True

    def __call__(self, epoch: int) -> list[np.ndarray]:
        labels = self.pseudo_labels(epoch) if self.pseudo_labels is not None else None
        if labels is None or not self.guided:
            return RandomBatchSampler(self.n_items, self.batch_size, self.seed).batches(epoch)
        return GuidedBatchSampler(labels, self.batch_size, self.seed).batches(epoch)


@dataclass(frozen=True)
class BatchDiagnostics:
    """An epoch's batches -> how many false negatives (same-class pairs) the loss still pushes apart, and how good
    the pseudo labels that guided it are. True labels measure here, never train.

    Always: `same_class_pairs_per_batch` (what guided batches reduce) and, with pseudo labels,
    `distinct_pseudo_labels_per_batch` and `pseudo_label_nmi`. With `detailed` (labels that act in the loss or
    change during training):
    - `same_class_negatives_per_batch`: the same-class pairs the loss still treats as negatives (`cancel` /
      `attract` act on the pairs that share a pseudo label too);
    - `false_negatives_removed`: 1 - that count over its expectation in random batches of the same sizes (SimCLR);
    - `pseudo_label_purity`, and `pseudo_pair_precision`: the share of same-pseudo-label pairs in a batch that
      are same-class pairs (the pairs `cancel` / `attract` act on).
    """

    true_labels: Optional[np.ndarray]
    """None where the images have no classes (an unlabelled pool): only the pseudo labels' spread is counted."""
    pseudo_labels: Optional[Callable[[], Optional[np.ndarray]]] = None
    """The labels the current epoch was guided by (G-SimCLR only; None during guidance's warm-up)."""
    loss_uses_labels: bool = False
    """Whether the loss cancels or attracts same-pseudo-label pairs (`false_negatives: cancel | attract`)."""
    detailed: bool = False

    def __call__(self, batches: Sequence[np.ndarray]) -> dict[str, float]:
        current, true = self.pseudo_labels() if self.pseudo_labels is not None else None, self.true_labels
        if true is None:
            return {} if current is None else {"distinct_pseudo_labels_per_batch": batch_stats(batches, current)[0]}
        _, same_class = batch_stats(batches, true)
        out = {"same_class_pairs_per_batch": same_class}
        if current is None:
            return out | (negatives(batches, true, same_class) if self.detailed else {})
        out["distinct_pseudo_labels_per_batch"], same_pseudo = batch_stats(batches, current)
        quality = cluster_quality(current, true)
        out["pseudo_label_nmi"] = quality["nmi"]
        if not self.detailed:
            return out
        _, both = batch_stats(batches, true * (int(current.max()) + 1) + current)
        out |= negatives(batches, true, same_class - both if self.loss_uses_labels else same_class)
        out["pseudo_label_purity"] = quality["purity"]
        if same_pseudo > 0:
            out["pseudo_pair_precision"] = both / same_pseudo
        return out


def negatives(batches: Sequence[np.ndarray], true: np.ndarray, count: float) -> dict[str, float]:
    """`count` same-class pairs per batch the loss treats as negatives, and the share of random batches' expected
    ones that leaves removed."""
    expected = expected_same_label_pairs(true, [len(b) for b in batches])
    removed = {"false_negatives_removed": 1.0 - count / expected} if expected > 0 else {}
    return {"same_class_negatives_per_batch": count, **removed}


def expected_same_label_pairs(labels: np.ndarray, batch_sizes: Sequence[int]) -> float:
    """Mean same-label pairs per batch when batches of these sizes are drawn at random without replacement."""
    n, counts = len(labels), np.bincount(labels)
    share = float((counts * (counts - 1)).sum()) / (n * (n - 1))  # chance that two distinct images share a label
    return float(np.mean([b * (b - 1) / 2 for b in batch_sizes])) * share


def same_label_pairs(batch_labels: np.ndarray) -> int:
    """Number of unordered pairs in a batch that share a label."""
    counts = np.bincount(batch_labels)
    return int((counts * (counts - 1) // 2).sum())


def batch_stats(batches: Sequence[np.ndarray], labels: np.ndarray) -> tuple[float, float]:
    """(mean distinct labels per batch, mean same-label pairs per batch) for one epoch's batches."""
    distinct = np.mean([len(np.unique(labels[b])) for b in batches])
    pairs = np.mean([same_label_pairs(labels[b]) for b in batches])
    return float(distinct), float(pairs)


def min_same_label_pairs(labels: np.ndarray, n_batches: int) -> int:
    """The fewest same-label pairs per epoch any partition into `n_batches` batches can reach."""
    sizes = np.bincount(labels)
    q, r = sizes // n_batches, sizes % n_batches
    return int((r * (q + 1) * q // 2 + (n_batches - r) * q * (q - 1) // 2).sum())


def shuffled_batches(indices: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Plain minibatches of `indices` in a random order (for the supervised heads and the autoencoder)."""
    order = rng.permutation(indices)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
