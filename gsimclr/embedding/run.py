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


def embed(encoder: Encoder, images: Images, out: Path, batch_size: int, device: torch.device) -> dict[str, list[int]]:
    """Write the embeddings of `images` under `out`; returns each tap's array shape."""
    module = encoder.module.to(device)
    pixels = images.pixels
    rows = map_batches(lambda i: module(pixels[i].to(device)).float().cpu(), len(pixels), batch_size, "embedding")
    out.mkdir(parents=True, exist_ok=True)
    shapes = {}
    for tap, (start, end) in encoder.columns.items():
        with atomic_open(out / f"{tap}.npy", "wb") as handle:
            np.save(handle, rows[:, start:end].numpy())
        shapes[tap] = [len(rows), end - start]
    write_csv(out / "index.csv", [{"row": row, "image": name} for row, name in enumerate(images.names)])
    write_json(out / "embed.json", {"model": encoder.source, "images": len(rows), "shapes": shapes})
    return shapes
