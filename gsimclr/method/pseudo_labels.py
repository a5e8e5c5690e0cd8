"""The G-SimCLR arm's pseudo labels for each epoch: the `cluster` stage's table, the network's own
embeddings re-clustered during training, or -- as an upper bound only -- the true labels.

Schedule (`guidance.warmup_epochs` = W, `guidance.refresh_every` = R):
- epochs 1..W are plain SimCLR: no labels (random batches, every other image a negative);
- autoencoder labels guide from epoch W+1; with R > 0 the network's backbone or head embeddings of every
  training image (eval mode, no augmentation, L2-normalised) are re-clustered with k-means before epochs
  W+1+R, W+1+2R, ... (DeepCluster, Caron et al. 2018; PCL, Li et al. 2021);
- network labels have no autoencoder table: the first k-means runs before epoch W+1, then every R epochs.
The refreshed labels are checkpointed, so a resumed run guides exactly as an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from gsimclr.method.clustering import keep_confident, kmeans_with_distances
from gsimclr.system.errors import MissingUpstreamError, UserError


def read_pseudo_labels(path: Path, n_images: int, pool_paths: Optional[Sequence[str]] = None) -> np.ndarray:
    """The `cluster` stage's table as one label per training image, in image order. Every refusal names the row
    (its line in the file) and the value that is wrong. With an unlabelled pool (`pool_paths`: each image's path in
    it) the table also keys every image by its path, and a path that is not the pool's is refused too."""
    if not path.exists():
        raise MissingUpstreamError(f"pseudo labels not found: {path} (run `gsimclr cluster` first)")
    try:
        table = pd.read_csv(path)
        indices, labels = table["index"].to_numpy(), table["cluster"].to_numpy()
    except (KeyError, ValueError, pd.errors.ParserError):
        raise UserError(f"{path}: expected columns index,cluster with integer values") from None
    for column, values in (("index", indices), ("cluster", labels)):
        if not np.issubdtype(values.dtype, np.integer):
            row = next(r for r, v in enumerate(values) if not _is_integer(v))
            value = values[row].item() if isinstance(values[row], np.generic) else values[row]
            raise UserError(f"{path}, line {row + 2}: {column} {value!r} is not an integer")
    checks = (
        (indices < 0, "index {} is negative"),
        (indices >= n_images, f"index {{}} is beyond the {n_images} training images (indices 0..{n_images - 1})"),
        (pd.Series(indices).duplicated().to_numpy(), "index {} appears a second time"),
        (labels < 0, "cluster {} is negative"),
        (labels >= n_images, f"cluster {{}} is beyond one cluster per image (ids 0..{n_images - 1})"),
    )
    for bad, message in checks:  # an id of 10^12 would make np.bincount ask for TiBs
        if bad.any():
            row = int(np.argmax(bad))
            value = (indices if message.startswith("index") else labels)[row]
            raise UserError(f"{path}, line {row + 2}: " + message.format(value))
    if len(indices) != n_images:
        missing = int(np.setdiff1d(np.arange(n_images), indices)[0])
        raise UserError(
            f"{path} labels {len(indices)} images but the training split has {n_images}: index {missing} is missing "
            "(re-run `gsimclr cluster`)"
        )
    if pool_paths is not None:
        _check_pool_paths(path, table, indices, pool_paths)
    return labels[np.argsort(indices)].astype(np.int64)


def _check_pool_paths(path: Path, table: pd.DataFrame, indices: np.ndarray, pool_paths: Sequence[str]) -> None:
    """Every row's `path` is the pool image its `index` names (a table of another pool is refused)."""
    if "path" not in table:
        raise UserError(f"{path}: expected a path column (the table of an unlabelled pool): re-run `gsimclr cluster`")
    for row, (index, image) in enumerate(zip(indices, table["path"].astype(str), strict=True)):
        if pool_paths[index] != image:
            raise UserError(
                f"{path}, line {row + 2}: {image!r} is not image {index} of data.pool "
                f"({pool_paths[index]!r}): re-run `gsimclr cluster`"
            )


def _is_integer(value: object) -> bool:
    try:
        return float(str(value)).is_integer()
    except ValueError:
        return False


def incremental_share(start: float, epoch: int, first: int, last: int) -> float:
    """The share of each cluster that keeps its pseudo label in `epoch`: `start` at the first guided epoch, growing
    linearly to 1 at the last (Chen et al. 2022 detect more false negatives as the embedding improves).

    >>> [round(incremental_share(0.2, epoch, first=3, last=11), 3) for epoch in (3, 7, 11)]
    [0.2, 0.6, 1.0]
    """
    return 1.0 if last <= first else start + (1.0 - start) * min(1.0, max(0, epoch - first) / (last - first))


class PseudoLabels:
    """Labels for each epoch; `current` is what the sampler and the loss of the running epoch use (None: the
    epoch trains as plain SimCLR)."""

    def __init__(
        self,
        initial: Optional[np.ndarray],
        refresh_every: int,
        k: int,
        n_init: int,
        seed: int,
        embed: Callable[[], np.ndarray],
        share: Callable[[np.ndarray], np.ndarray] = lambda x: x,
        warmup_epochs: int = 0,
        confident: Callable[[int], float] = lambda epoch: 1.0,
    ) -> None:
        """`initial` is the labels guidance starts from (None: cluster the network first); `embed` returns one
        row per training image from the model as it is now; `share` makes every data-parallel rank use rank 0's
        labels (k-means on per-rank BatchNorm statistics could differ); `confident(epoch)` is the share of each
        refreshed cluster that keeps its label (`incremental_share`)."""
        if initial is None and not refresh_every:
            raise ValueError("labels from the network need refresh_every >= 1")
        self._initial: Optional[np.ndarray] = initial
        self._refreshed: Optional[np.ndarray] = None
        self.refreshed_at = 0
        """Epoch whose labels came from the model (0: none yet)."""
        self.current: Optional[np.ndarray] = initial if warmup_epochs == 0 else None
        self._refresh_every, self._k, self._n_init, self._seed = refresh_every, k, n_init, seed
        self._warmup = warmup_epochs
        self._embed, self._share, self._confident = embed, share, confident

    def due(self, epoch: int) -> bool:
        """Whether `epoch` starts a new refresh period (never with `refresh_every` 0)."""
        if not self._refresh_every or epoch <= self._warmup:
            return False
        since_start = epoch - self._warmup - 1
        first_is_refresh = self._initial is None
        return since_start % self._refresh_every == 0 and (since_start > 0 or first_is_refresh)

    def refresh_if_due(self, epoch: int) -> Optional[np.ndarray]:
        """The labels of `epoch` (None during warm-up): re-clustered from the model's embeddings (k-means)
        first when `epoch` starts a new refresh period."""
        if self.due(epoch) and self.refreshed_at != epoch:
            features = self._embed()
            labels, distance = kmeans_with_distances(features, self._k, self._n_init, self._seed + epoch)
            if self._confident(epoch) < 1:
                labels = keep_confident(labels, distance, self._confident(epoch))
            self._refreshed, self.refreshed_at = self._share(labels), epoch
        self.current = None if epoch <= self._warmup else (self._refreshed if self.refreshed_at else self._initial)
        return self.current

    def state_dict(self) -> dict[str, Any]:
        """The refreshed labels and when they were refreshed (for resume checkpoints)."""
        labels = self._refreshed if self.refreshed_at else self._initial
        return {"labels": torch.tensor(labels if labels is not None else []), "refreshed_at": self.refreshed_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the labels of a resume checkpoint."""
        self.refreshed_at = int(state["refreshed_at"])
        if self.refreshed_at:
            self._refreshed = self.current = state["labels"].numpy()
