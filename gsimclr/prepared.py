"""The decoded dataset on disk: the `prepare` stage decodes the images once into uint8 arrays, and every
other stage memory-maps them instead of decoding the dataset again (21 decodes per 3-seed study before).

One folder per dataset and resolution under `prepared/` (`Layout.prepared_data`): `train_x.npy`,
`train_y.npy`, `test_x.npy`, `test_y.npy` and `meta.json` (class names, shapes, the content digest the
training stages key their checkpoints on). Arrays are opened copy-on-write: pages are read on demand and
evicted under memory pressure, and nothing a stage does writes back to the file.

Opening verifies the training arrays against the digest, reading their files in 16 MiB chunks (hashing
through the map would bring every page into the process's memory); meta.json holds nothing that changes
when the same images are prepared again, so an unchanged dataset keeps the output's DVC hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsimclr.config import DataConfig
from gsimclr.data import ImageSplits, decode_dataset, long_tailed, with_digest
from gsimclr.errors import UserError
from gsimclr.storage import atomic_open, hash_file, read_json, write_json

ARRAYS = ("train_x", "train_y", "test_x", "test_y")
REPREPARE = "re-run `gsimclr prepare` (or `dvc repro prepare`)"


def dataset_key(cfg: DataConfig) -> str:
    """The folder name of one dataset at one resolution (and, for digits, one test split)."""
    name = f"{cfg.name}-{Path(cfg.root).name}" if cfg.name == "imagefolder" and cfg.root else cfg.name
    split = f"-test{cfg.test_fraction:g}" if cfg.name == "digits" else ""
    return f"{name}-{cfg.stored_side}px{split}"


def write_prepared(data: ImageSplits, folder: Path) -> dict[str, Any]:
    """Write the decoded splits and their metadata (each file atomically; meta.json last, so a folder
    without it was never finished). Returns the metadata."""
    arrays = {"train_x": data.train_x, "train_y": data.train_y, "test_x": data.test_x, "test_y": data.test_y}
    for name, tensor in arrays.items():
        with atomic_open(folder / f"{name}.npy", "wb") as handle:
            np.save(handle, tensor.contiguous().numpy())
    meta = {
        "classes": data.classes,
        "digest": data.digest,
        "shapes": {name: list(tensor.shape) for name, tensor in arrays.items()},
    }
    write_json(folder / "meta.json", meta)
    return meta


def arrays_digest(train_x: np.memmap, train_y: np.memmap) -> str:
    """`ImageSplits.digest` of memory-mapped arrays, computed from their files in 16 MiB reads (hashing
    through the map would bring every page of the array into this process's memory)."""
    digest = hashlib.sha256()
    for array in (train_x, train_y):
        hash_file(digest, Path(str(array.filename)), array.offset)
    return digest.hexdigest()[:16]


def read_prepared(folder: Path) -> ImageSplits:
    """The prepared splits, memory-mapped. A truncated or edited array is a one-line `UserError` with a
    re-prepare hint: its shape or content digest no longer matches meta.json, and nothing downstream
    trains on it."""
    meta = read_json(folder / "meta.json", f"prepared dataset metadata ({REPREPARE})")
    arrays: dict[str, np.memmap] = {}
    for name in ARRAYS:
        path = folder / f"{name}.npy"
        try:
            array = np.load(path, mmap_mode="c")
        except (OSError, ValueError) as exc:
            raise UserError(
                f"{path} is missing, truncated or not an array ({type(exc).__name__}): {REPREPARE}"
            ) from None
        if list(array.shape) != meta["shapes"][name]:
            raise UserError(
                f"{path} holds shape {list(array.shape)}, meta.json says {meta['shapes'][name]}: {REPREPARE}"
            )
        arrays[name] = array
    if arrays_digest(arrays["train_x"], arrays["train_y"]) != meta["digest"]:
        raise UserError(f"{folder}: the training arrays do not match their digest in meta.json: {REPREPARE}")
    train_x, train_y, test_x, test_y = (torch.from_numpy(arrays[name]) for name in ARRAYS)
    data = ImageSplits(train_x, train_y, test_x, test_y, list(meta["classes"]))
    return with_digest(data, meta["digest"])


def load(cfg: DataConfig, folder: Path) -> ImageSplits:
    """A stage's dataset: the prepared arrays in `folder` where the `prepare` stage wrote them, else
    decoded now (a stage run on its own, before any `prepare`)."""
    data = read_prepared(folder) if (folder / "meta.json").exists() else decode_dataset(cfg)
    return long_tailed(data, cfg)
