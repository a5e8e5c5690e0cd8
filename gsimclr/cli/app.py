"""The `gsimclr` Typer application and the options every command shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from gsimclr.settings.names import Stream

app = typer.Typer(
    help="G-SimCLR: SimCLR with pseudo-label-guided batches, as a reproducible, tracked pipeline.\n\n"
    "Stages run in order: prepare -> autoencoder -> cluster -> pretrain -> evaluate -> compare, once per seed; "
    "`gsimclr repro` (or `dvc repro`) runs every stage that changed, `gsimclr study FILE` runs a parameter set "
    "from pipelines/ as a DVC experiment.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"gsimclr {version('gsimclr')}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    params: Annotated[Path, typer.Option("--params", "-p", help="Parameter file to read.")] = Path("params.yaml"),
    device: Annotated[str, typer.Option(help="auto (cuda -> mps -> cpu), cpu, cuda, cuda:N or mps.")] = "auto",
    stream: Annotated[
        Stream,
        typer.Option(
            help="auto: copy each split onto the device when it takes at most a quarter of the free memory, "
            "else stream batches from the prepared arrays (read ahead in the background); on / off: always / never "
            "stream. Results are identical either way.",
        ),
    ] = "auto",
    seed: Annotated[
        Optional[int],
        typer.Option(
            min=0,
            help="Which run of the study: its artifacts go under artifacts/seed<N>/ "
            "(default: the first of params `seeds`).",
        ),
    ] = None,
) -> None:
    """Global options shared by every stage."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    ctx.obj = {"params": params, "device": device, "seed": seed, "stream": stream}
