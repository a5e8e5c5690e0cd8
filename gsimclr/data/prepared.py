"""The decoded dataset on disk: the `prepare` stage decodes the images once into uint8 arrays, and every
other stage memory-maps them instead of decoding the dataset again (21 decodes per 3-seed study before).

One folder per dataset and resolution under `prepared/` (`Layout.prepared_data`): `train_x.npy`,
`train_y.npy`, `test_x.npy`, `test_y.npy` (with `data.pool` also `pool_x.npy` and `pool_paths.json`, each pool
image's path) and `meta.json` (class names, shapes, the content digest the training stages key their checkpoints
on, a digest of every file, and where the images came from).
Arrays are opened copy-on-write: pages are read on demand and evicted under memory pressure, and nothing a
stage does writes back to the file.

One integrity rule: opening verifies every array a stage reads against meta.json (reading the files in
16 MiB chunks: hashing through the map would bring every page into the process's memory), and the folder
is keyed by the dataset's identity, its resolved root, never its folder name alone; a root whose files
changed since `prepare` is refused. meta.json holds nothing that changes when the same images are
prepared again, so an unchanged dataset keeps the output's DVC hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from gsimclr.data.loaders import decode_dataset
from gsimclr.data.splits import ImageSplits, Pool, long_tailed, with_digest
from gsimclr.settings.config import DataConfig
from gsimclr.system.errors import UserError
from gsimclr.system.storage import atomic_open, hash_file, read_json, write_json

ARRAYS = ("train_x", "train_y", "test_x", "test_y")
POOL_ARRAY, POOL_PATHS = "pool_x", "pool_paths"
"""The unlabelled pool's images (`.npy`) and their paths in the pool folder (`.json`), where `data.pool` names one."""
REPREPARE = "re-run `gsimclr prepare` (or `dvc repro prepare`)"


class PreparedMeta(BaseModel):
    """meta.json of a prepared folder, validated like params: a hand-edited or foreign file is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: list[str]
    digest: str
    """`ImageSplits.digest` of the training split: the identity training checkpoints are keyed on."""
    files: dict[str, str]
    """Short SHA-256 of each array file: every array a stage reads is covered, labels included."""
    shapes: dict[str, list[int]]
    source: Optional[str] = None
    """Fingerprint of the files under `data.root` when prepared (None for the embedded digits)."""
    unreadable: int = 0
    """Image files left out because they could not be decoded (written only when there are any, so a clean
    dataset's metadata, and so its DVC hash, is what it always was)."""
    unreadable_examples: list[str] = []


def source_root(cfg: DataConfig) -> Optional[Path]:
    """The dataset's folder, resolved (symlinks and `..` followed); None for the embedded digits."""
    return Path(cfg.root).resolve() if cfg.root and cfg.name != "digits" else None


def source_roots(cfg: DataConfig) -> list[Path]:
    """Every folder `prepare` reads, resolved: the dataset's, then the unlabelled pool's (none for digits)."""
    root = source_root(cfg)
    return ([root] if root else []) + ([Path(cfg.pool).resolve()] if cfg.pool else [])


def source_files(root: Path) -> list[Path]:
    """Every file under `root`, in a fixed order (sorted folders, sorted names)."""
    found: list[Path] = []
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        found.extend(Path(folder) / name for name in sorted(files))
    return found


def source_listing(roots: list[Path]) -> str:
    """Short SHA-256 of every file's relative path, size and modification time (per root): cheap (no file is
    read), but it changes when the same bytes are copied or mounted again, so it only ever confirms a
    `source_fingerprint`."""
    listings = []
    for root in roots:
        digest = hashlib.sha256()
        for path in source_files(root):
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode(errors="replace"))
        listings.append(digest.hexdigest()[:16])
    return "|".join(listings)


def source_fingerprint(cfg: DataConfig) -> Optional[str]:
    """Short SHA-256 of every file's relative path and bytes under `data.root` (and `data.pool`; None for the
    embedded digits): it changes when a file is added, removed, replaced or edited, and only then (a fresh copy
    or mount of the same files, with new modification times, keeps it)."""
    roots = source_roots(cfg)
    if not roots:
        return None
    digest = hashlib.sha256()
    for root in roots:
        for path in source_files(root):
            digest.update(f"{path.relative_to(root)}\0{path.stat().st_size}\0".encode(errors="replace"))
            hash_file(digest, path)  # after its size, so no file's bytes can pass for the next file's name
    return digest.hexdigest()[:16]


def confirmed_fingerprint(cfg: DataConfig, stamp: Path) -> Optional[str]:
    """`source_fingerprint(cfg)`, read from `stamp` while the root's `source_listing` is the one stored there
    (as DVC and make trust unchanged sizes and times), else computed from the bytes and stamped again."""
    roots = source_roots(cfg)
    if not roots:
        return None
    try:
        stored = json.loads(stamp.read_text(encoding="utf-8"))
        if stored["listing"] == source_listing(roots) and isinstance(stored["fingerprint"], str):
            return stored["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no stamp yet, or an unreadable one: the bytes decide
    return stamped_fingerprint(cfg, stamp)


def stamped_fingerprint(cfg: DataConfig, stamp: Path) -> Optional[str]:
    """`source_fingerprint(cfg)` from the bytes, stored in `stamp` with the listing taken before reading them
    (a file changed meanwhile changes the listing, so the next stage reads the bytes again)."""
    roots = source_roots(cfg)
    if not roots:
        return None
    listing = source_listing(roots)
    fingerprint = source_fingerprint(cfg)
    write_json(stamp, {"listing": listing, "fingerprint": fingerprint})
    return fingerprint


def dataset_key(cfg: DataConfig) -> str:
    """The folder name of one dataset at one resolution (and, for digits, one test split): a dataset read from a
    folder is named by that folder and a hash of its resolved path, so two roots of one name never share it."""
    root = source_root(cfg)
    name = cfg.name if root is None else f"{cfg.name}-{root.name}-{hashlib.sha256(str(root).encode()).hexdigest()[:8]}"
    split = f"-test{cfg.test_fraction:g}" if cfg.name == "digits" else ""
    pool = Path(cfg.pool).resolve() if cfg.pool else None
    pooled = f"-pool-{pool.name}-{hashlib.sha256(str(pool).encode()).hexdigest()[:8]}" if pool else ""
    return f"{name}{pooled}-{cfg.stored_side}px{split}"


def file_hash(path: Path) -> str:
    """Short SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    hash_file(digest, path)
    return digest.hexdigest()[:16]


def write_prepared(data: ImageSplits, folder: Path, source: Optional[str]) -> dict[str, Any]:
    """Write the decoded splits (and pool) and their metadata (each file atomically; meta.json last, so a folder
    without it was never finished). `source`: the roots' `source_fingerprint`. Returns the metadata."""
    arrays = {"train_x": data.train_x, "train_y": data.train_y, "test_x": data.test_x, "test_y": data.test_y}
    if data.pool is not None:
        arrays[POOL_ARRAY] = data.pool.images
        write_json(folder / f"{POOL_PATHS}.json", list(data.pool.paths))
    for name, tensor in arrays.items():
        with atomic_open(folder / f"{name}.npy", "wb") as handle:
            np.save(handle, tensor.contiguous().numpy())
    files = {name: file_hash(folder / f"{name}.npy") for name in arrays}
    if data.pool is not None:
        files[POOL_PATHS] = file_hash(folder / f"{POOL_PATHS}.json")
    meta = PreparedMeta(
        classes=data.classes,
        digest=data.digest,
        files=files,
        shapes={name: list(tensor.shape) for name, tensor in arrays.items()},
        source=source,
        unreadable=data.unreadable,
        unreadable_examples=list(data.unreadable_examples),
    ).model_dump(exclude={"unreadable", "unreadable_examples"} if not data.unreadable else set())
    write_json(folder / "meta.json", meta)
    return meta


def read_meta(folder: Path) -> PreparedMeta:
    """meta.json of a prepared folder, validated; anything else is a one-line `UserError` with a re-prepare hint."""
    raw = read_json(folder / "meta.json", f"prepared dataset metadata ({REPREPARE})")
    try:
        meta = PreparedMeta.model_validate(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        raise UserError(f"{folder / 'meta.json'}: {where}: {problem['msg']}: {REPREPARE}") from None
    pooled = POOL_ARRAY in meta.shapes
    arrays = {*ARRAYS, POOL_ARRAY} if pooled else set(ARRAYS)
    if set(meta.files) != arrays | ({POOL_PATHS} if pooled else set()) or set(meta.shapes) != arrays:
        raise UserError(f"{folder / 'meta.json'} does not describe the arrays {', '.join(ARRAYS)}: {REPREPARE}")
    return meta


def read_prepared(folder: Path, source: Optional[str] = None) -> ImageSplits:
    """The prepared splits, memory-mapped. A truncated or edited array (any of the four), a malformed meta.json
    or labels outside the class list is a one-line `UserError` with a re-prepare hint; so is a dataset root
    whose files changed since it was prepared (`source`: its `source_fingerprint` now)."""
    meta = read_meta(folder)
    if meta.source != source:
        raise UserError(f"{folder}: the files under data.root changed since they were prepared: {REPREPARE}")
    arrays = {name: _open_array(folder, name, meta) for name in meta.shapes}
    for name in ("train_y", "test_y"):
        if len(arrays[name]) and not 0 <= int(arrays[name].min()) <= int(arrays[name].max()) < len(meta.classes):
            raise UserError(f"{folder}: {name} holds labels outside the {len(meta.classes)} classes: {REPREPARE}")
    train_x, train_y, test_x, test_y = (torch.from_numpy(arrays[name]) for name in ARRAYS)
    data = ImageSplits(
        train_x,
        train_y,
        test_x,
        test_y,
        list(meta.classes),
        meta.unreadable,
        tuple(meta.unreadable_examples),
        _read_pool(folder, meta, arrays),
    )
    return with_digest(data, meta.digest)


def _open_array(folder: Path, name: str, meta: PreparedMeta) -> np.memmap:
    """One array file, memory-mapped, checked against its shape and digest in meta.json."""
    path = folder / f"{name}.npy"
    try:
        array = np.load(path, mmap_mode="c")
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is missing, truncated or not an array ({type(exc).__name__}): {REPREPARE}") from None
    if list(array.shape) != meta.shapes[name]:
        raise UserError(f"{path} holds shape {list(array.shape)}, meta.json says {meta.shapes[name]}: {REPREPARE}")
    if file_hash(path) != meta.files[name]:
        raise UserError(f"{path} does not match its digest in meta.json (edited since prepared): {REPREPARE}")
    return array


def _read_pool(folder: Path, meta: PreparedMeta, arrays: dict[str, np.memmap]) -> Optional[Pool]:
    """The prepared pool (images and their paths, checked against meta.json), or None without one."""
    if POOL_ARRAY not in arrays:
        return None
    path = folder / f"{POOL_PATHS}.json"
    paths = read_json(path, f"the pool's image paths ({REPREPARE})")
    if (
        file_hash(path) != meta.files[POOL_PATHS]
        or not isinstance(paths, list)
        or len(paths) != len(arrays[POOL_ARRAY])
    ):
        raise UserError(f"{path} does not match meta.json (edited since prepared): {REPREPARE}")
    return Pool(torch.from_numpy(arrays[POOL_ARRAY]), tuple(str(p) for p in paths))


def load(cfg: DataConfig, folder: Path, stamp: Path) -> ImageSplits:
    """A stage's dataset: the prepared arrays in `folder` where the `prepare` stage wrote them, else
    decoded now (a stage run on its own, before any `prepare`). `stamp`: where the root's fingerprint is
    cached against its file listing (`confirmed_fingerprint`)."""
    if not (folder / "meta.json").exists():
        return long_tailed(decode_dataset(cfg), cfg)
    data = read_prepared(folder, confirmed_fingerprint(cfg, stamp))
    return long_tailed(data, cfg)
