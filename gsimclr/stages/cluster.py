"""Stage 2: bottleneck features of every training image (or pool image) -> k-means pseudo labels (+ diagnostics)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from sklearn.manifold import TSNE

from gsimclr.data.splits import to_float
from gsimclr.method.clustering import cluster_quality, kmeans_pseudo_labels, size_stats
from gsimclr.method.samplers import GuidedBatchSampler, RandomBatchSampler, batch_stats, min_same_label_pairs
from gsimclr.models import build
from gsimclr.models.autoencoder import DenoisingAutoencoder
from gsimclr.outputs import plots
from gsimclr.outputs.metrics import ClusterMetrics
from gsimclr.pipeline.tracking import stage_run
from gsimclr.settings.names import NOT_MEASURED, UNMEASURED_KEY, Stage
from gsimclr.stages.context import StageContext, finish, log_training_data
from gsimclr.system.errors import UserError
from gsimclr.system.storage import load_upstream, write_json
from gsimclr.training.engine import map_batches

STAGE: Stage = "cluster"


def load_autoencoder(ctx: StageContext) -> DenoisingAutoencoder:
    """The `autoencoder` stage's autoencoder of this seed; a missing or mismatched file is a one-line error."""
    return load_upstream(
        ctx.layout.autoencoder,
        "autoencoder",
        "gsimclr autoencoder",
        lambda state: build.autoencoder(ctx.params.autoencoder, state.get("in_channels", 1)),
        "does not match autoencoder.filters/kernel_size in params",
    ).to(ctx.device)


def image_features(ctx: StageContext, images: torch.Tensor) -> np.ndarray:
    """One row per training image: pooled autoencoder bottleneck, or raw pixels for the baseline."""
    on_device = ctx.on_device(images)
    if ctx.params.cluster.features == "pixels":
        return to_float(on_device[:]).flatten(1).cpu().numpy().astype(np.float64)
    model = load_autoencoder(ctx)
    features = map_batches(lambda idx: model.features(to_float(on_device[idx])).cpu(), len(images), 256, "features")
    return features.numpy().astype(np.float64)


def sampler_preview(pseudo: np.ndarray, true: Optional[np.ndarray], batch_size: int, seed: int) -> dict[str, float]:
    """One epoch of random vs guided batches, measured against pseudo and true labels (diagnostic; the true-class
    counts are left out where the images have no classes).

    `min_same_class_pairs` is the fewest same-class pairs per batch any partition of the epoch allows:
    what guidance with perfect labels would reach.
    """
    n_batches = len(RandomBatchSampler(len(pseudo), batch_size, seed))
    out = {} if true is None else {"min_same_class_pairs": min_same_label_pairs(true, n_batches) / n_batches}
    for name, sampler in (
        ("random", RandomBatchSampler(len(pseudo), batch_size, seed)),
        ("guided", GuidedBatchSampler(pseudo, batch_size, seed)),
    ):
        batches = sampler.batches(1)
        out[f"{name}_distinct_pseudo_labels"], out[f"{name}_same_pseudo_pairs"] = batch_stats(batches, pseudo)
        if true is not None:
            _, out[f"{name}_same_class_pairs"] = batch_stats(batches, true)
    return out


def tsne_figure(
    features: np.ndarray, pseudo: np.ndarray, true: Optional[np.ndarray], class_names: list[str], points: int, seed: int
) -> Figure:
    """t-SNE of (a sample of) the clustered features, coloured by pseudo label and (where known) by true class."""
    rng = np.random.default_rng(seed)
    shown = np.sort(rng.choice(len(features), min(points, len(features)), replace=False))
    # scikit-learn's default perplexity 30 needs more than 30 points; fewer points get a smaller one
    perplexity = min(30.0, len(shown) - 1.0)
    embedding = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(
        features[shown]
    )
    return plots.tsne_panels(embedding, pseudo[shown], None if true is None else true[shown], class_names)


def cluster(ctx: StageContext) -> ClusterMetrics:
    """k-means (`cluster.k`) on the autoencoder's bottleneck features (or raw pixels) of every training image.

    Writes the pseudo-label table G-SimCLR's sampler reads, and diagnostics against the true labels
    (NMI, purity, a preview of one epoch of random vs guided batches) that are measured, never trained on.
    """
    params, cfg, layout = ctx.params, ctx.params.cluster, ctx.layout
    data = ctx.dataset()
    images = data.unlabelled_x
    if cfg.k > len(images):
        raise UserError(f"cluster.k={cfg.k} is larger than the {len(images)} training images")
    features = image_features(ctx, images)
    pseudo, inertia = kmeans_pseudo_labels(features, cfg.k, cfg.n_init, ctx.seed)
    true = data.unlabelled_truth

    metrics = ClusterMetrics(
        inertia=inertia,
        **size_stats(pseudo),
        **(cluster_quality(pseudo, true) if true is not None else {}),
        **sampler_preview(pseudo, true, params.pretrain.batch_size, ctx.seed),
    )
    unmeasured = {UNMEASURED_KEY: NOT_MEASURED} if true is None else {}
    table = pd.DataFrame({"index": np.arange(len(pseudo))})
    if data.pool is not None:  # a pool's images are known by their paths in it
        table["path"] = data.pool.paths
    table["cluster"] = pseudo
    with stage_run(STAGE, params, ctx.config, seed=ctx.seed) as tracker:
        log_training_data(tracker, ctx, data)
        tracker.publish_table(table, layout.pseudo_labels)
        write_json(layout.metrics("cluster"), metrics.to_json() | unmeasured)
        tracker.log_metrics(metrics.to_json())
        for key, value in unmeasured.items():
            tracker.set_tag(key, value)
        tracker.log_artifact(layout.pseudo_labels)
        tracker.publish_figure(plots.cluster_sizes(pseudo), layout.cluster_figure("cluster_sizes"))
        tracker.publish_figure(
            tsne_figure(features, pseudo, true, data.classes, cfg.tsne_points, ctx.seed),
            layout.cluster_figure("cluster_tsne"),
        )
        finish(ctx, STAGE, tracker.run_id)
    return metrics
