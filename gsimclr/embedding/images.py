"""The images `gsimclr embed` reads: a folder of image files at any depth (no class folders needed), decoded as
an image-folder dataset is for training, or a split the project's `prepare` stage stored -- checked against what
the encoder was trained on before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gsimclr.embedding.encoder import Encoder
from gsimclr.system.errors import UserError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Images:
    """uint8 images (N, C, side, side) and what each row is: a path relative to the folder, or `split[row]`."""

    pixels: torch.Tensor
    names: list[str]


def folder_images(folder: Path, encoder: Encoder, on_unreadable: str = "skip") -> Images:
    """Every image file under `folder`, resized and centre-cropped to the encoder's side as `prepare` does; the
    undecodable ones left out and counted (`on_unreadable: skip`) or refused (`error`)."""
    from gsimclr.data.image_files import decode_files, image_tree, printable

    paths = image_tree(folder)
    if not paths:
        raise UserError(f"{folder}: no image files (jpg, png, webp, ... at any depth; hidden ones are skipped)")
    if encoder.channels != 3:
        raise UserError(
            f"{encoder.source} takes {encoder.channels}-channel images, and an image folder is decoded as RGB, as for "
            f"training: embed images like those it was trained on (a prepared split: --split train|test)"
        )
    decoded = decode_files(paths, encoder.side, on_unreadable, folder)
    if not decoded.kept:
        raise UserError(f"{folder}: none of its {len(paths)} image files could be decoded")
    names = [printable(str(Path(paths[i]).relative_to(folder))) for i in decoded.kept]
    return Images(decoded.images, names)


def prepared_images(folder: Path, split: str, encoder: Encoder) -> Images:
    """A split of the project's prepared arrays (`prepare`'s output, memory-mapped), as stored."""
    from gsimclr.data.prepared import read_meta, read_prepared

    if not (folder / "meta.json").is_file():
        raise UserError(f"no prepared dataset at {folder} (run `gsimclr prepare` in the project first)")
    data = read_prepared(folder, read_meta(folder).source)  # the arrays as they are; data.root need not be here
    pixels = data.train_x if split == "train" else data.test_x
    expected = (encoder.channels, encoder.side, encoder.side)
    if tuple(pixels.shape[1:]) != expected:
        raise UserError(
            f"{encoder.source} was trained on {'x'.join(map(str, expected))} images (channels x side x side); "
            f"{folder} holds {'x'.join(map(str, pixels.shape[1:]))} ones"
        )
    return Images(pixels, [f"{split}[{row}]" for row in range(len(pixels))])
