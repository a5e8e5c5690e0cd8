"""Stage 2: bottleneck features of every training image -> k-means pseudo labels (+ diagnostics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.manifold import TSNE

from gsimclr import plots
from gsimclr.clustering import cluster_quality, kmeans_pseudo_labels, size_stats
from gsimclr.data import load_dataset, to_float
from gsimclr.engine import map_batches
from gsimclr.errors import MissingUpstreamError, UserError
from gsimclr.models.autoencoder import DenoisingAutoencoder
from gsimclr.samplers import GuidedBatchSampler, RandomBatchSampler, batch_stats, min_same_label_pairs
from gsimclr.stages.context import StageContext, finish
from gsimclr.storage import atomic_open, load_torch, write_json
from gsimclr.tracking import stage_run

STAGE = "cluster"


def load_autoencoder(ctx: StageContext) -> DenoisingAutoencoder:
    path = ctx.layout.autoencoder
    if not path.exists():
        raise MissingUpstreamError(f"autoencoder not found: {path} (run `gsimclr train` first)")
    state = load_torch(path, "autoencoder checkpoint")
    cfg = ctx.params.autoencoder
    model = DenoisingAutoencoder(state.get("in_channels", 1), list(cfg.filters), cfg.kernel_size, cfg.noise_std)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError):
        raise UserError(f"{path} does not match autoencoder.filters/kernel_size in params (re-run `gsimclr train`)") from None
    return model.to(ctx.device).eval()


def image_features(ctx: StageContext, images: torch.Tensor) -> np.ndarray:
    """One row per training image: pooled autoencoder bottleneck, or raw pixels for the baseline."""
    if ctx.params.cluster.features == "pixels":
        return to_float(images).flatten(1).numpy().astype(np.float64)
    model = load_autoencoder(ctx)
    images = images.to(ctx.device)
    features = map_batches(lambda idx: model.features(to_float(images[idx])).cpu(), len(images), 256, "features")
    return features.numpy().astype(np.float64)


def sampler_preview(pseudo: np.ndarray, true: np.ndarray, batch_size: int, seed: int) -> dict[str, float]:
    """One epoch of random vs guided batches, measured against pseudo and true labels (diagnostic).

    `min_same_class_pairs` is the fewest same-class pairs per batch any partition of the epoch allows:
    what guidance with perfect labels would reach.
    """
    n_batches = len(RandomBatchSampler(len(pseudo), batch_size, seed))
    out = {"min_same_class_pairs": min_same_label_pairs(true, n_batches) / n_batches}
    for name, sampler in (("random", RandomBatchSampler(len(pseudo), batch_size, seed)),
                          ("guided", GuidedBatchSampler(pseudo, batch_size, seed))):
        batches = sampler.batches(1)
        out[f"{name}_distinct_pseudo_labels"], out[f"{name}_same_pseudo_pairs"] = batch_stats(batches, pseudo)
        _, out[f"{name}_same_class_pairs"] = batch_stats(batches, true)
    return out


def cluster(ctx: StageContext) -> dict[str, float]:
    params, cfg, layout = ctx.params, ctx.params.cluster, ctx.layout
    data = load_dataset(params.data)
    if cfg.k > len(data.train_x):
        raise UserError(f"cluster.k={cfg.k} is larger than the {len(data.train_x)} training images")
    features = image_features(ctx, data.train_x)
    pseudo, inertia = kmeans_pseudo_labels(features, cfg.k, cfg.n_init, ctx.seed)
    true = data.train_y.numpy()

    metrics = {"inertia": inertia, **size_stats(pseudo), **cluster_quality(pseudo, true),
               **sampler_preview(pseudo, true, params.pretrain.batch_size, ctx.seed)}
    table = pd.DataFrame({"index": np.arange(len(pseudo)), "cluster": pseudo})
    with atomic_open(layout.pseudo_labels) as handle:
        table.to_csv(handle, index=False)
    write_json(layout.metrics("cluster"), metrics)

    with stage_run(STAGE, params, seed=ctx.seed) as tracker:
        tracker.log_metrics(metrics)
        tracker.log_table(table, "pseudo_labels.json")
        tracker.log_artifact(layout.pseudo_labels)
        rng = np.random.default_rng(ctx.seed)
        shown = np.sort(rng.choice(len(features), min(cfg.tsne_points, len(features)), replace=False))
        # scikit-learn's default perplexity 30 needs more than 30 points; fewer points get a smaller one
        perplexity = min(30.0, len(shown) - 1.0)
        embedding = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=ctx.seed).fit_transform(features[shown])
        figures = {
            "cluster_sizes.png": plots.cluster_sizes(pseudo),
            "cluster_tsne.png": plots.tsne_panels(embedding, pseudo[shown], true[shown], data.classes),
        }
        for name, figure in figures.items():
            plots.save_png(figure, layout.plot(name))
            tracker.log_figure(figure, name)
            plots.close(figure)
        finish(ctx, STAGE, tracker.run_id)
    return metrics
