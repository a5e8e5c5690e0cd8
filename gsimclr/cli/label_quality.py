"""`gsimclr label-quality`: how well a trained encoder's embedding tracks the classes -- the pairs label-free
guidance built on it would act on -- measured before a single guided epoch is spent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from gsimclr.cli.app import app
from gsimclr.cli.embed import MODEL_HELP, prepared_folder
from gsimclr.cli.errors import reported_errors
from gsimclr.system.errors import UserError

KS = [10, 30, 100]
"""k-means cluster counts scored by default: the classes' count on CIFAR-10, and over-clustering."""
TOPS = [1, 5, 20]
"""Nearest-neighbour counts scored by default."""
SUSPECTS = [1, 3, 6]
"""Suspects per image in a batch scored by default: one (NNCLR-like), and about as many as a batch of 64 holds of
one class of 10."""
TAPS = ["P1", "P3"]
"""Representations scored by default: the head (closest to what the loss sees) and the backbone."""


@app.command("label-quality")
def label_quality(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)] = "",
    split: Annotated[Literal["train", "test"], typer.Option(help="The prepared split to embed and score.")] = "train",
    k: Annotated[list[int], typer.Option("--k", help="k-means cluster counts to score (repeatable).")] = KS,
    top: Annotated[list[int], typer.Option("--top", help="Nearest-neighbour counts to score (repeatable).")] = TOPS,
    suspects: Annotated[
        list[int],
        typer.Option(
            "--suspects", help="Suspects per image in a random batch to score (repeatable; guidance.neighbours)."
        ),
    ] = SUSPECTS,
    batch: Annotated[
        Optional[int], typer.Option(help="Images per random batch for the suspects (default pretrain.batch_size).")
    ] = None,
    tap: Annotated[list[str], typer.Option("--tap", help="Representations to score (repeatable): P1, P2, P3.")] = TAPS,
    seed: Annotated[int, typer.Option(help="Seed of k-means and of the random batches.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 256,
    output: Annotated[Optional[Path], typer.Option(help="Also write the table (Markdown) to this file.")] = None,
) -> None:
    """Score the pairs label-free guidance would act on, from a trained encoder's embedding of a prepared split,
    against its true classes (read only to score): how often an image's n nearest neighbours share its class, the
    precision and recall of n suspects per image in random batches (guidance.labels: neighbours), and k-means
    clusters' NMI, purity, pair precision and pair recall (the share of same-class pairs -- SimCLR's false
    negatives -- that share a cluster, which cancelling same-cluster negatives would remove).

    Example: gsimclr label-quality --model artifacts/seed0/pretrain_simclr.pt --k 10 --k 100 --output quality.md
    """
    from gsimclr.data.prepared import read_meta, read_prepared
    from gsimclr.embedding.encoder import load_encoder
    from gsimclr.embedding.images import prepared_images
    from gsimclr.embedding.run import embeddings
    from gsimclr.reporting.label_quality import label_quality_table
    from gsimclr.settings.loading import load_params
    from gsimclr.training.device import select_device

    with reported_errors():
        if not model:
            raise UserError(f"--model is required: {MODEL_HELP}")
        folder = prepared_folder(ctx.obj["params"])
        encoder = load_encoder(model)
        unknown = sorted(set(tap) - set(encoder.columns))
        if unknown:
            raise UserError(
                f"--tap {', '.join(unknown)}: not a representation of {encoder.source} ({', '.join(encoder.columns)})"
            )
        images = prepared_images(folder, split, encoder)
        if max(top) >= len(images.names) or max(k) > len(images.names) or min([*top, *k]) < 1:
            raise UserError(f"--top and --k must be between 1 and the {len(images.names)} images of the {split} split")
        batch = batch or load_params(ctx.obj["params"]).pretrain.batch_size
        if not 0 < min(suspects) <= max(suspects) < batch <= len(images.names):
            raise UserError(
                f"--suspects must be between 1 and --batch - 1, and --batch ({batch}) at most the "
                f"{len(images.names)} images of the {split} split"
            )
        data = read_prepared(folder, read_meta(folder).source)
        true = (data.train_y if split == "train" else data.test_y).numpy()
        features = embeddings(encoder, images, batch_size, select_device(ctx.obj["device"]))
        table = label_quality_table({name: features[name] for name in tap}, true, k, top, seed, batch, suspects)
    typer.echo(table)
    if output is not None:
        from gsimclr.system.storage import write_text

        write_text(output, f"{table}\n\nEncoder: {encoder.source}; images: the prepared {split} split ({len(true)}).\n")
