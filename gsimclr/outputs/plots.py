"""Figures a person would rather look at than read: loss curves, t-SNE of the latent space, cluster sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from gsimclr.system.storage import atomic_open


def save_png(figure: Figure, path: Path) -> None:
    """Write `figure` as a PNG atomically (a reader never sees half a file)."""
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110, bbox_inches="tight")


def loss_curves(history: list[dict[str, float]], keys: list[str], title: str) -> Figure:
    """One line per metric in `keys` against the epoch."""
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    epochs = [row["epoch"] for row in history]
    for key in keys:
        axis.plot(epochs, [row[key] for row in history], marker=".", label=key)
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    return figure


def tsne_panels(
    embedding: np.ndarray, clusters: np.ndarray, classes: Optional[np.ndarray], class_names: list[str]
) -> Figure:
    """Two views of one t-SNE map: coloured by pseudo label and by true class (diagnostic only); one view where the
    images have no classes (an unlabelled pool)."""
    panels = 1 if classes is None else 2
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 5), squeeze=False)
    left = axes[0, 0]
    left.scatter(embedding[:, 0], embedding[:, 1], c=clusters, cmap="nipy_spectral", s=6)
    left.set_title(f"autoencoder latent space by k-means cluster (k={clusters.max() + 1})")
    if classes is not None:
        right = axes[0, 1]
        for label in np.unique(classes):
            mask = classes == label
            right.scatter(embedding[mask, 0], embedding[mask, 1], s=6, label=class_names[label])
        right.set_title("the same map by true class")
        right.legend(markerscale=3, fontsize="small", loc="best")
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    return figure


def cluster_sizes(clusters: np.ndarray) -> Figure:
    """Cluster sizes, largest first, against their mean: how balanced the pseudo labels are."""
    sizes = np.sort(np.bincount(clusters))[::-1]
    figure, axis = plt.subplots(figsize=(6, 3))
    axis.bar(np.arange(len(sizes)), sizes)
    axis.axhline(sizes.mean(), color="k", linestyle="--", linewidth=1, label=f"mean {sizes.mean():.1f}")
    axis.set_xlabel("cluster (sorted by size)")
    axis.set_ylabel("images")
    axis.set_title("pseudo-label cluster sizes")
    axis.legend()
    return figure


def accuracy_by_seed(methods: dict[str, dict[str, list[float]]], baselines: list[tuple[str, list[float]]]) -> Figure:
    """Every seed as a dot, the mean as a bar end, per method and representation: spread is visible at a glance."""
    figure, axis = plt.subplots(figsize=(7, 3.8))
    representations = list(next(iter(methods.values())))
    width = 0.8 / len(methods)
    for index, (method, cells) in enumerate(methods.items()):
        offset = (index - (len(methods) - 1) / 2) * width
        for position, representation in enumerate(representations):
            values = np.asarray(cells[representation])
            x = position + offset
            axis.bar(
                x, values.mean(), width * 0.9, color=f"C{index}", alpha=0.35, label=method if position == 0 else None
            )
            axis.scatter(np.full(len(values), x), values, color=f"C{index}", s=14, zorder=3)
    for style, (name, baseline) in zip(("--", ":", "-."), baselines, strict=False):
        axis.axhline(float(np.mean(baseline)), color="k", linestyle=style, linewidth=1, label=f"{name} (mean)")
    axis.set_xticks(range(len(representations)), representations)
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("test accuracy: bars are means over seeds, dots single seeds")
    axis.legend(fontsize="small", loc="lower right")
    axis.grid(axis="y", alpha=0.3)
    return figure


LEGEND_INSIDE_CHARS = 30
"""The longest legend label `curves_by_seed` keeps inside the axes (an oracle arm's full name goes below them)."""


def curves_by_seed(curves: dict[str, list[tuple[list[int], list[float]]]], ylabel: str, title: str) -> Figure:
    """One line per (method, seed), coloured by method; each run is (epochs, values)."""
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    for index, (method, runs) in enumerate(curves.items()):
        for number, (epochs, values) in enumerate(runs):
            axis.plot(
                epochs,
                values,
                color=f"C{index}",
                alpha=0.8,
                marker="." if len(values) < 30 else None,
                label=method if number == 0 else None,
            )
    axis.set_xlabel("epoch")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    if max(map(len, curves)) > LEGEND_INSIDE_CHARS:  # a box that wide would hide curves: below the axes instead
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize="small", frameon=False)
    else:
        axis.legend()
    axis.grid(alpha=0.3)
    return figure


def forest(rows: list[tuple[str, float, float]], title: str) -> Figure:
    """A forest plot: one row per (label, mean, half-width) in points, top to bottom, the 95 % interval as a bar
    and zero as a line, so that whether an interval crosses zero is seen at once (a nan half-width -- one seed --
    draws the point alone). The figure widens with its longest label line, so the plot keeps its width."""
    lines = [line for label, _, _ in rows for line in label.splitlines()]
    row_height = 0.42 if len(lines) == len(rows) else 0.6
    width = 4.5 + 0.07 * max(map(len, lines), default=0)
    figure, axis = plt.subplots(figsize=(max(7.0, width), row_height * len(rows) + 1.1))
    positions = np.arange(len(rows))[::-1]
    for y, (_, mean, half) in zip(positions, rows, strict=True):
        crosses = np.isnan(half) or abs(mean) <= half
        colour = "0.45" if crosses else "C0"
        axis.errorbar(mean, y, xerr=None if np.isnan(half) else half, fmt="o", color=colour, capsize=3)
        text = f"{mean:+.2f}" if np.isnan(half) else f"{mean:+.2f} ± {half:.2f}"
        axis.annotate(text, (mean, y), xytext=(0, 6), textcoords="offset points", ha="center", fontsize="x-small")
    axis.axvline(0.0, color="k", linewidth=1)
    axis.set_yticks(positions, [label for label, _, _ in rows])
    axis.set_xlabel("paired difference in test accuracy (points), mean ± 95 % interval over seeds")
    axis.set_title(title)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def close(figure: Figure) -> None:
    """Free a figure's memory (pyplot keeps every open figure alive)."""
    plt.close(figure)
