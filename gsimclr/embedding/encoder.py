"""The encoder `gsimclr embed` runs, from wherever it was kept: an MLflow model (`models:/NAME@ALIAS`,
`models:/NAME/VERSION`, `runs:/RUN_ID/model`) or a pretraining checkpoint file (`artifacts/seed0/pretrain_gsimclr.pt`).

Either way it is the `Embedder` that pretraining logs -- stored uint8 images in, P1 | P2 | P3 out -- with what it
takes read from the model itself, never re-specified by hand: the channels and side of the images (the MLflow
signature's input shape, or the checkpoint's `data` params) and which columns hold which tap (the model's
metadata, or computed from the network).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from gsimclr.system.errors import UserError

MLFLOW_SCHEMES = ("models:/", "runs:/")
"""Model URIs resolved through the tracking store (`MLFLOW_TRACKING_URI`, else the project's `mlruns/`)."""
PRETRAINED = ("simclr", "gsimclr")
"""The checkpoints `embed` reads: pretraining's (`artifacts/seed<N>/pretrain_<method>.pt`)."""


@dataclass(frozen=True)
class Encoder:
    """A loaded encoder: `module` maps uint8 (N, channels, side, side) to float (N, D); `columns` says which of the
    D columns hold P1, P2 and P3."""

    module: torch.nn.Module
    channels: int
    side: int
    columns: dict[str, list[int]]
    source: str


def load_encoder(model: str) -> Encoder:
    """The encoder named by `model`; anything else is a one-line `UserError`."""
    if model.startswith(MLFLOW_SCHEMES):
        return from_mlflow(model)
    if "://" in model or model.startswith(("models:", "runs:")):
        raise UserError(f"--model {model}: not a model URI gsimclr reads (models:/NAME@ALIAS, runs:/RUN_ID/model)")
    return from_checkpoint(Path(model))


def from_mlflow(uri: str) -> Encoder:
    """A registered or logged `Embedder`: the PyTorch flavour's module, its signature and metadata."""
    import mlflow.pytorch
    from mlflow.models import get_model_info

    from gsimclr.pipeline.tracking_names import redacted, tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    try:
        info = get_model_info(uri)
    except Exception as exc:  # noqa: BLE001 (MLflow raises many types for a missing model, run or store)
        raise UserError(
            f"no MLflow model at {uri} in {redacted(tracking_uri())} ({type(exc).__name__}): "
            "the Models page of `mlflow ui` lists what is registered"
        ) from None
    taps = (info.metadata or {}).get("gsimclr_taps")
    inputs = info.signature.inputs.to_dict() if info.signature is not None else []
    if not taps or len(inputs) != 1 or len(inputs[0].get("tensor-spec", {}).get("shape", [])) != 4:
        raise UserError(
            f"{uri} is not a gsimclr encoder (an autoencoder, or a backbone logged before `embed` existed): "
            "use a pretraining model, or re-run `gsimclr pretrain` to log one"
        )
    _, channels, side, _ = inputs[0]["tensor-spec"]["shape"]
    module = mlflow.pytorch.load_model(uri)
    return Encoder(module, int(channels), int(side), {tap: list(span) for tap, span in taps.items()}, uri)


def from_checkpoint(path: Path) -> Encoder:
    """A pretraining checkpoint: the network rebuilt from the params it was trained with (saved beside it)."""
    from gsimclr.models import build
    from gsimclr.models.embedder import Embedder
    from gsimclr.settings.config import DataConfig, ModelConfig
    from gsimclr.system.storage import load_torch

    if not path.is_file():
        raise UserError(
            f"--model {path}: no such file (a pretraining checkpoint such as artifacts/seed0/pretrain_gsimclr.pt, "
            "or an MLflow URI such as models:/gsimclr-digits-gsimclr@newest)"
        )
    state: dict[str, Any] = load_torch(path, "pretraining checkpoint")
    config = state.get("config") or {}
    if state.get("method") not in PRETRAINED or "model" not in config or "data" not in config:
        raise UserError(f"{path} is not a pretraining checkpoint (`gsimclr pretrain` writes them)")
    try:
        model = ModelConfig.model_validate({**config["model"], "channels_last": False})
        data = DataConfig.model_validate(config["data"])
        embedder = Embedder(build.simclr_net(model, int(state["in_channels"])), data.image_size)
        embedder.net.load_state_dict(state["model"])
    except (ValidationError, KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: its network does not match the params saved with it ({type(exc).__name__})") from None
    return Encoder(embedder.eval(), int(state["in_channels"]), data.stored_side, embedder.columns, str(path))
