"""The G-SimCLR arm's pseudo labels: the `cluster` stage's table, optionally refreshed from the model.

With `guidance.refresh_every = N`, the labels of epochs 1..N are the autoencoder's; before epochs N+1,
2N+1, ... the model's own backbone embeddings of every training image (eval mode, no augmentation,
L2-normalised) are re-clustered with k-means and the guided batches follow the new labels
(DeepCluster/PCL-style). The current labels are checkpointed, so a resumed run guides exactly as an
uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gsimclr.method.clustering import kmeans_pseudo_labels
from gsimclr.system.errors import MissingUpstreamError, UserError


def read_pseudo_labels(path: Path, n_images: int) -> np.ndarray:
    """The `cluster` stage's table as one label per training image, in image order."""
    if not path.exists():
        raise MissingUpstreamError(f"pseudo labels not found: {path} (run `gsimclr cluster` first)")
    try:
        table = pd.read_csv(path)
        labels = table.sort_values("index")["cluster"].to_numpy(dtype=np.int64)
        indices = table["index"].to_numpy()
    except (KeyError, ValueError, pd.errors.ParserError):
        raise UserError(f"{path}: expected columns index,cluster with integer values") from None
    if len(labels) != n_images or set(indices) != set(range(n_images)):
        raise UserError(
            f"{path} labels {len(labels)} images but the training split has {n_images} (re-run `gsimclr cluster`)"
        )
    if labels.min() < 0 or labels.max() >= n_images:  # an id of 10^12 would make np.bincount ask for TiBs
        raise UserError(f"{path}: cluster ids must lie in [0, {n_images}) (one cluster per image at most)")
    return labels


class PseudoLabels:
    """Labels for each epoch; `current` is what the sampler and the loss of the running epoch use."""

    def __init__(
        self,
        initial: np.ndarray,
        refresh_every: int,
        k: int,
        n_init: int,
        seed: int,
        embed: Callable[[], np.ndarray],
        share: Callable[[np.ndarray], np.ndarray] = lambda x: x,
    ) -> None:
        """`embed` returns one row per training image from the model as it is now; `share` makes every
        data-parallel rank use rank 0's labels (k-means on per-rank BatchNorm statistics could differ)."""
        self.current = initial
        self.refreshed_at = 0
        """Epoch whose labels came from the model (0: still the autoencoder's)."""
        self._refresh_every, self._k, self._n_init, self._seed = refresh_every, k, n_init, seed
        self._embed, self._share = embed, share

    def due(self, epoch: int) -> bool:
        """Whether `epoch` starts a new refresh period (never with `refresh_every` 0)."""
        return self._refresh_every > 0 and epoch > 1 and (epoch - 1) % self._refresh_every == 0

    def refresh_if_due(self, epoch: int) -> np.ndarray:
        """The labels of `epoch`: re-clustered from the model's embeddings (k-means) first when `epoch`
        starts a new refresh period."""
        if self.due(epoch) and self.refreshed_at != epoch:
            features = self._embed()
            labels, _ = kmeans_pseudo_labels(features, self._k, self._n_init, self._seed + epoch)
            self.current, self.refreshed_at = self._share(labels), epoch
        return self.current

    def state_dict(self) -> dict[str, Any]:
        """The current labels and when they were refreshed (for resume checkpoints)."""
        return {"labels": torch.tensor(self.current), "refreshed_at": self.refreshed_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the labels of a resume checkpoint."""
        self.current, self.refreshed_at = state["labels"].numpy(), int(state["refreshed_at"])
