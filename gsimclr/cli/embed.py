"""`gsimclr embed`: a trained encoder put to use on images, outside the pipeline (no params file needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from gsimclr.cli.app import app
from gsimclr.cli.errors import reported_errors
from gsimclr.system.errors import UserError

MODEL_HELP = (
    "The trained encoder: a registered MLflow model (models:/gsimclr-digits-gsimclr@newest), a run's model "
    "(runs:/RUN_ID/model) or a pretraining checkpoint (artifacts/seed0/pretrain_gsimclr.pt)."
)


@app.command()
def embed(
    ctx: typer.Context,
    images: Annotated[
        Optional[Path], typer.Argument(help="A folder of images at any depth (no class folders needed).")
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)] = "",
    out: Annotated[Path, typer.Option(help="Folder for P1.npy, P2.npy, P3.npy, index.csv and embed.json.")] = Path(
        "embeddings"
    ),
    split: Annotated[
        Optional[Literal["train", "test"]],
        typer.Option(help="A split of the project's prepared data (the dataset of --params), not a folder."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 256,
    on_unreadable: Annotated[
        Literal["skip", "error"], typer.Option(help="An image file that cannot be decoded: leave it out, or stop.")
    ] = "skip",
) -> None:
    """Turn images into embeddings at P1, P2 and P3 with a trained encoder, preprocessed as in training (read from
    the model: channels, image size, the central crop).

    Example: gsimclr embed photos/ --model models:/gsimclr-digits-gsimclr@newest --out embeddings/
    """
    from gsimclr.embedding.encoder import load_encoder
    from gsimclr.embedding.images import folder_images, prepared_images
    from gsimclr.embedding.run import embed as run_embed
    from gsimclr.embedding.run import refuse_output_inside
    from gsimclr.training.device import select_device

    with reported_errors():
        if not model:
            raise UserError(f"--model is required: {MODEL_HELP}")
        if (images is None) == (split is None):
            raise UserError("give an image folder or --split train|test (one of them)")
        if images is not None:
            refuse_output_inside(out, images)
        encoder = load_encoder(model)
        if images is not None:
            found = folder_images(images, encoder, on_unreadable)
        else:
            found = prepared_images(prepared_folder(ctx.obj["params"]), split or "train", encoder)
        shapes = run_embed(encoder, found, out, batch_size, select_device(ctx.obj["device"]))
    typer.echo(
        f"embedded {len(found.names)} images with {encoder.source}: "
        + ", ".join(f"{tap} {rows}x{width}" for tap, (rows, width) in shapes.items())
        + f" in {out}/ (rows: index.csv)"
    )


def prepared_folder(params_file: Path) -> Path:
    """Where `prepare` stored the dataset that `params_file` names."""
    from gsimclr.data.prepared import dataset_key
    from gsimclr.pipeline.layout import Layout
    from gsimclr.settings.loading import load_params

    return Layout().prepared_data(dataset_key(load_params(params_file).data))
