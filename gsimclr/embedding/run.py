"""Images through the encoder, batched on the chosen device, into one `.npy` per tap and an index.

`OUT/P1.npy`, `OUT/P2.npy`, `OUT/P3.npy` (float32, one row per image), `OUT/index.csv` (`row,image`: which image
each row is) and `OUT/embed.json` (the model, the images and the shapes), each written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gsimclr.embedding.encoder import Encoder
from gsimclr.embedding.images import Images
from gsimclr.system.errors import UserError
from gsimclr.system.storage import atomic_open, write_csv, write_json
from gsimclr.training.engine import map_batches


def refuse_output_inside(out: Path, images: Path) -> None:
    """Embeddings written into the folder they embed would be read back as data (or clobber it) next time."""
    if out.resolve().is_relative_to(images.resolve()):
        raise UserError(f"--out {out} is inside the image folder {images}: write the embeddings elsewhere")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder")


def embeddings(encoder: Encoder, images: Images, batch_size: int, device: torch.device) -> dict[str, np.ndarray]:
    """The embeddings of `images` at each tap (P1, P2, P3), one float32 row per image."""
    module = encoder.module.to(device)
    pixels = images.pixels
    rows = map_batches(lambda i: module(pixels[i].to(device)).float().cpu(), len(pixels), batch_size, "embedding")
    return {tap: rows[:, start:end].numpy() for tap, (start, end) in encoder.columns.items()}


def embed(encoder: Encoder, images: Images, out: Path, batch_size: int, device: torch.device) -> dict[str, list[int]]:
    """Write the embeddings of `images` under `out`; returns each tap's array shape."""
    taps = embeddings(encoder, images, batch_size, device)
    out.mkdir(parents=True, exist_ok=True)
    for tap, rows in taps.items():
        with atomic_open(out / f"{tap}.npy", "wb") as handle:
            np.save(handle, rows)
    write_csv(out / "index.csv", [{"row": row, "image": name} for row, name in enumerate(images.names)])
    shapes = {tap: list(rows.shape) for tap, rows in taps.items()}
    write_json(out / "embed.json", {"model": encoder.source, "images": len(images.names), "shapes": shapes})
    return shapes
