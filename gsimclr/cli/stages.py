"""One command per pipeline stage (what `dvc.yaml` runs): load the params, seed, build the stage's context
and run it with its errors reported."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gsimclr.cli.app import app
from gsimclr.cli.errors import reported_errors
from gsimclr.settings.names import EvalMethod, Method, is_pretrained
from gsimclr.system.errors import UserError

RestartOption = Annotated[bool, typer.Option("--restart", help="Ignore a resume checkpoint and train from scratch.")]


RESUMABLE = ("autoencoder", "pretrain", "evaluate")
"""The stages that checkpoint their training loop; the others start again when re-run."""


def _run(ctx: typer.Context, name: str, stage: Callable, method: Optional[str] = None, restart: bool = False) -> Any:
    """Build the context of stage `name` (its declared params only), seed the RNGs, and run `stage` with
    its errors reported."""
    with reported_errors(resumable=name in RESUMABLE):
        from gsimclr.pipeline.layout import Layout
        from gsimclr.settings.loading import load_params
        from gsimclr.stages.context import seed_everything, stage_context
        from gsimclr.training.device import select_device

        params = load_params(ctx.obj["params"])
        seed = params.seeds[0] if ctx.obj["seed"] is None else ctx.obj["seed"]
        if seed not in params.seeds:
            raise UserError(
                f"--seed {seed} is not one of params `seeds` {params.seeds}: add it there so `compare` sees it"
            )
        device = select_device(ctx.obj["device"])
        seed_everything(seed)
        context = stage_context(params, name, method, seed, Layout(), device, restart, ctx.obj["stream"])
        return stage(context, method) if method is not None else stage(context)


@app.command()
def prepare(ctx: typer.Context) -> None:
    """Decode the dataset once into memory-mapped arrays that every other stage reads (prepared/).

    Example: gsimclr prepare
    """
    from gsimclr.stages.prepare import prepare as run_prepare

    meta = _run(ctx, "prepare", run_prepare)
    shapes = meta["shapes"]
    left_out = meta.get("unreadable", 0)
    typer.echo(
        f"prepared: {shapes['train_x'][0]} training and {shapes['test_x'][0]} test images"
        + (f", {shapes['pool_x'][0]} unlabelled pool images" if "pool_x" in shapes else "")
        + f", digest {meta['digest']}"
        + (
            f"; {left_out} unreadable image file(s) left out (first: {meta['unreadable_examples'][0]})"
            if left_out
            else ""
        )
    )


@app.command()
def autoencoder(ctx: typer.Context, restart: RestartOption = False) -> None:
    """Train the denoising autoencoder (early-stopped on a validation split of the training data).

    Example: gsimclr autoencoder
    """
    from gsimclr.stages.autoencoder import train_autoencoder

    metrics = _run(ctx, "autoencoder", train_autoencoder, restart=restart)
    typer.echo(f"autoencoder: best epoch {metrics['best_epoch']}, val MSE {metrics['val_loss']:.5f}")


app.command("train", hidden=True, help="Alias of `gsimclr autoencoder` (its name before 0.2).")(autoencoder)


@app.command()
def cluster(ctx: typer.Context) -> None:
    """Cluster the autoencoder's bottleneck features with k-means into pseudo labels.

    Example: gsimclr cluster
    """
    from gsimclr.settings.names import NOT_MEASURED
    from gsimclr.stages.cluster import cluster as run_cluster

    metrics = _run(ctx, "cluster", run_cluster)
    nmi = NOT_MEASURED if metrics.nmi is None else f"{metrics.nmi:.3f}"
    typer.echo(f"pseudo labels: k={metrics.clusters:.0f}, NMI vs true labels {nmi} (diagnostic only)")


@app.command()
def pretrain(
    ctx: typer.Context,
    method: Annotated[Method, typer.Option(help="simclr: random batches; gsimclr: pseudo-label-guided batches.")],
    restart: RestartOption = False,
) -> None:
    """Pretrain SimCLR or G-SimCLR (same loop, different batch sampler).

    Example: gsimclr pretrain --method gsimclr
    """
    from gsimclr.stages.pretrain import pretrain as run_pretrain

    metrics = _run(ctx, "pretrain", run_pretrain, method, restart=restart)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once rather than once per process
        typer.echo(f"{method}: final NT-Xent loss {metrics.loss:.4f}")


@app.command()
def evaluate(
    ctx: typer.Context,
    method: Annotated[
        EvalMethod,
        typer.Option(
            help="A pretrained model, the supervised baseline, or a control: "
            "random_init (untrained network; its fine-tune trains from scratch) or pixels."
        ),
    ],
    restart: RestartOption = False,
    screen: Annotated[
        bool,
        typer.Option(
            "--screen",
            help="Screening: a network's linear probes on the validation split only (no fine-tune, the test "
            "split untouched), to choose variants; writes metrics/seed<N>/screen_<method>.json.",
        ),
    ] = False,
) -> None:
    """Linear probes at P1/P2/P3 and 10% fine-tuning, the supervised baseline, or a control.

    Example: gsimclr evaluate --method simclr; gsimclr evaluate --method random_init;
    gsimclr evaluate --method gsimclr --screen
    """
    from gsimclr.stages.evaluate import evaluate as run_evaluate
    from gsimclr.stages.evaluate import screen as run_screen

    if screen:
        with reported_errors():
            if not is_pretrained(method) and method != "random_init":
                raise UserError(f"--screen evaluates a network (--method simclr, gsimclr or random_init), not {method}")
        found = _run(ctx, "evaluate", run_screen, method)
        typer.echo(f"{method} (validation split): " + ", ".join(f"{k} {v:.4f}" for k, v in found.items()))
        return
    scores = _run(ctx, "evaluate", run_evaluate, method, restart=restart)
    typer.echo(f"{method}: " + ", ".join(f"{row} {100 * s.test_acc:.2f}%" for row, s in scores.rows.items()))


@app.command()
def compare(ctx: typer.Context) -> None:
    """Write results/results.md and results.csv (paper Tables II and III) and link the runs in MLflow.

    Example: gsimclr compare
    """
    from gsimclr.stages.compare import compare as run_compare

    _run(ctx, "compare", run_compare)
    typer.echo(f"results: {Path('results/results.md').resolve()}")
