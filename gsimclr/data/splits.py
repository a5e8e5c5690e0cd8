"""The decoded dataset and the seeded splits every stage shares: the fit/validation split carved from the
training data (never the test split), the class-stratified labelled fraction of fine-tuning, and the
long-tailed training split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Optional

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from gsimclr.settings.config import DataConfig
from gsimclr.system.errors import UserError


@dataclass(frozen=True)
class Pool:
    """Unlabelled images (`data.pool`) as uint8 (N, C, H, W), and each one's path relative to the pool folder: the
    key of the pseudo-label table."""

    images: torch.Tensor
    paths: tuple[str, ...]


@dataclass(frozen=True)
class ImageSplits:
    """Train and test images as uint8 (N, C, H, W) tensors with integer class labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    unreadable: int = 0
    """Image files left out because they could not be decoded (`data.on_unreadable: skip`), train and test."""
    unreadable_examples: tuple[str, ...] = ()
    """The first few of them (paths)."""
    pool: Optional[Pool] = None
    """The unlabelled images the unsupervised stages train on (`data.pool`); None: they train on `train_x`."""

    @cached_property
    def digest(self) -> str:
        """Short SHA-256 of the training images and labels as decoded (and of the pool, where there is one): what
        every training stage consumes, so a changed dataset never resumes a checkpoint built from the old one."""
        digest = hashlib.sha256(self.train_x.contiguous().numpy().data)  # hashes the buffer, no copy
        digest.update(self.train_y.contiguous().numpy().data)
        if self.pool is not None:
            digest.update(self.pool.images.contiguous().numpy().data)
            digest.update("\0".join(self.pool.paths).encode(errors="surrogateescape"))
        return digest.hexdigest()[:16]

    @property
    def unlabelled_x(self) -> torch.Tensor:
        """The images the autoencoder, the pseudo labels and pretraining train on: the pool, else the training split."""
        return self.train_x if self.pool is None else self.pool.images

    @property
    def unlabelled_truth(self) -> Optional[np.ndarray]:
        """The true classes of `unlabelled_x`, to measure diagnostics only (never to train); None for a pool."""
        return self.train_y.numpy() if self.pool is None else None

    @property
    def channels(self) -> int:
        """Image channels (1 for digits, 3 for RGB)."""
        return int(self.train_x.shape[1])

    @property
    def num_classes(self) -> int:
        """Number of classes (from the class names, so an empty class still counts)."""
        return len(self.classes)


def with_digest(data: ImageSplits, digest: str) -> ImageSplits:
    """`data` with its digest already known (verified against its files), so it is not hashed again; a
    subset made from it (`dataclasses.replace`) is a new object and hashes its own images."""
    data.__dict__["digest"] = digest  # where functools.cached_property keeps its value
    return data


@dataclass(frozen=True)
class LabelSplit:
    """Indices into the training split: `fit` trains, `val` selects models and stops early."""

    fit: np.ndarray
    val: np.ndarray


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1]."""
    return images.float().div_(255.0)


def long_tailed(data: ImageSplits, cfg: DataConfig) -> ImageSplits:
    """The training split cut to `data.imbalance_ratio` (unchanged at ratio 1); the test split is untouched."""
    if cfg.imbalance_ratio <= 1:
        return data
    keep = torch.as_tensor(long_tailed_indices(data.train_y.numpy(), cfg.imbalance_ratio, cfg.imbalance_seed))
    return replace(data, train_x=data.train_x[keep], train_y=data.train_y[keep])


def long_tailed_counts(class_sizes: np.ndarray, ratio: float) -> np.ndarray:
    """Images kept per class: exponential decay from the smallest class size to 1/ratio of it (at least 1)."""
    n_classes, head = len(class_sizes), int(class_sizes.min())
    return np.maximum(1, np.floor(head * ratio ** (-np.arange(n_classes) / (n_classes - 1)))).astype(int)


def long_tailed_indices(labels: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """A seeded long-tailed subset of the training split (class 0 largest), in the original order."""
    rng = np.random.default_rng(seed)
    counts = long_tailed_counts(np.bincount(labels), ratio)
    kept = [rng.choice(np.flatnonzero(labels == c), size=n, replace=False) for c, n in enumerate(counts)]
    return np.sort(np.concatenate(kept))


def split_indices(n: int, val_fraction: float, seed: int, labels: Optional[torch.Tensor] = None) -> LabelSplit:
    """Seeded fit/val split carved from the training split (never the test split).

    Stratified by class when `labels` are given (evaluation); random otherwise (unsupervised stages,
    which must not see labels).
    """
    try:
        fit, val = train_test_split(
            np.arange(n), test_size=val_fraction, stratify=None if labels is None else labels.numpy(), random_state=seed
        )
    except ValueError as exc:
        raise UserError(
            f"cannot carve a validation split (data.val_fraction={val_fraction}) from {n} images: {exc}"
        ) from None
    return LabelSplit(np.sort(fit), np.sort(val))


def stratified_subset(indices: np.ndarray, labels: torch.Tensor, fraction: float, seed: int) -> np.ndarray:
    """A class-stratified `fraction` of `indices` (the 10% labels of the fine-tuning protocol)."""
    if fraction >= 1.0:
        return indices
    try:
        subset, _ = train_test_split(indices, train_size=fraction, stratify=labels[indices].numpy(), random_state=seed)
    except ValueError as exc:
        raise UserError(f"cannot draw a class-stratified {fraction:.0%} of {len(indices)} images: {exc}") from None
    return np.sort(subset)
