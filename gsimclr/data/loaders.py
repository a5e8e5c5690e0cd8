"""Datasets decoded once into in-memory uint8 tensors (the splits every stage shares: `gsimclr.data.splits`).

All supported datasets fit in memory at the resolutions used here (CIFAR-10: 150 MB), so stages index
tensors directly instead of decoding images per step; that keeps the data path off the training profile.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from gsimclr.data.image_files import decode_files, image_tree, is_visible_image, printable, refuse_symlink_loops
from gsimclr.data.splits import ImageSplits, Pool, long_tailed
from gsimclr.settings.config import DataConfig
from gsimclr.system.errors import UserError
from gsimclr.system.storage import file_digest

CIFAR_DIRNAME = "cifar-10-batches-py"
CIFAR_HELP = (
    "get it with data.download: true (needs network), or unpack the python version from "
    "https://www.cs.toronto.edu/~kriz/cifar.html so that {root}/cifar-10-batches-py exists"
)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    resized = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


DIGITS_TEST_SPLIT_SEED = 0
"""digits ships no test split; ours is carved once, the same for every run seed, so seeds share a test set."""


def _load_digits(cfg: DataConfig) -> ImageSplits:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=cfg.test_fraction, stratify=digits.target, random_state=DIGITS_TEST_SPLIT_SEED
    )
    images = _resize(images, cfg.stored_side)
    return ImageSplits(
        images[train_idx], labels[train_idx], images[test_idx], labels[test_idx], [str(c) for c in range(10)]
    )


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what the documented CIFAR-10 python batches hold (dicts, lists, bytes, numbers and
    numpy arrays): any other global, e.g. `os.system` in a booby-trapped file, is refused, not called."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 store an array's bytes through it
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _safe_unpickle(path: Path) -> dict:
    """A CIFAR-10 python batch as a dict; anything else (or any code in it) is a one-line `UserError`."""
    try:
        with path.open("rb") as handle:
            obj = _CifarUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise UserError(f"not a CIFAR-10 python batch: {path} ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(obj, dict):
        raise UserError(f"not a CIFAR-10 python batch: {path} (holds {type(obj).__name__})")
    return obj


def _read_cifar_batches(folder: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the documented CIFAR-10 python format (pickled dicts with b'data' and b'labels')."""
    data: list[np.ndarray] = []
    labels: list[int] = []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise UserError(f"CIFAR-10 batch missing: {path}")
        batch = _safe_unpickle(path)
        try:
            array = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            data.append(array)
            labels.extend(int(label) for label in batch[b"labels"])
        except (KeyError, ValueError, TypeError) as exc:
            raise UserError(f"not a CIFAR-10 python batch: {path} ({type(exc).__name__})") from None
    return torch.from_numpy(np.concatenate(data)), torch.tensor(labels, dtype=torch.int64)


def _load_cifar10(cfg: DataConfig) -> ImageSplits:
    root = Path(cfg.root or ".")
    folder = root / CIFAR_DIRNAME
    if not folder.is_dir():
        if not cfg.download:
            raise UserError(f"CIFAR-10 not found at {folder}: " + CIFAR_HELP.format(root=root))
        from torchvision.datasets import CIFAR10

        try:
            CIFAR10(str(root), train=True, download=True)
        except OSError as exc:
            raise UserError(f"CIFAR-10 download failed ({exc}); " + CIFAR_HELP.format(root=root)) from None
    train_x, train_y = _read_cifar_batches(folder, [f"data_batch_{i}" for i in range(1, 6)])
    test_x, test_y = _read_cifar_batches(folder, ["test_batch"])
    classes = [str(i) for i in range(10)]
    meta = folder / "batches.meta"
    if meta.is_file():
        try:
            classes = [name.decode() for name in _safe_unpickle(meta)[b"label_names"]]
        except (KeyError, AttributeError, TypeError):
            raise UserError(f"not a CIFAR-10 batches.meta file: {meta}") from None
    return ImageSplits(_resize(train_x, cfg.stored_side), train_y, _resize(test_x, cfg.stored_side), test_y, classes)


def _read_image_folder(
    folder: Path, size: int, on_unreadable: str = "skip"
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str], list[str]]:
    """Decode an ImageFolder tree once; returns images, labels, class names, the decoded files and the skipped ones.

    Unreadable images are skipped with a counted warning (`on_unreadable: skip`): one truncated JPEG among
    thousands should not end a study, but silently dropping data would hide a broken copy, so the count and the
    first offending path are printed, and kept (`ImageSplits.unreadable`); `error` stops at the first one instead.
    Images that are not 8-bit RGB or grey (RGBA, CMYK, 16-bit, palette) are converted to RGB, and counted the same
    way (`gsimclr.data.image_files`).
    """
    if not folder.is_dir():
        raise UserError(f"image folder not found: {folder} (expected <root>/train/<class>/*.jpg and <root>/test/...)")
    refuse_symlink_loops(folder)
    classes, samples = _image_files(folder)
    decoded = decode_files([path for path, _ in samples], size, on_unreadable, folder)
    labels = [samples[i][1] for i in decoded.kept]
    missing = sorted(set(range(len(classes))) - set(labels))
    if missing:
        raise UserError(f"{folder}: no readable image in class folder(s) {[classes[c] for c in missing]}")
    paths = [samples[i][0] for i in decoded.kept]
    return decoded.images, torch.tensor(labels, dtype=torch.int64), classes, paths, decoded.skipped


def _image_files(folder: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names (the visible sub-folders, sorted, as torchvision's ImageFolder names them) and every visible
    image file under them with its class index. Hidden folders and files (`.ipynb_checkpoints/`, `.DS_Store`)
    are not data; a class name that is not valid UTF-8 is kept with its bytes escaped, so plots and tables
    can print it."""
    from torchvision.datasets.folder import make_dataset

    entries = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))
    if not entries:
        raise UserError(f"{folder}: no class folders (expected {folder}/<class>/*.jpg)")

    try:
        samples = make_dataset(str(folder), {name: i for i, name in enumerate(entries)}, None, is_visible_image)
    except FileNotFoundError as exc:
        raise UserError(f"{folder}: {printable(str(exc).splitlines()[0])}") from None
    samples = [
        (path, c) for path, c in samples if not any(p.startswith(".") for p in Path(path).relative_to(folder).parts)
    ]
    return [printable(name) for name in entries], samples


def _load_imagefolder(cfg: DataConfig) -> ImageSplits:
    root = Path(cfg.root or ".")
    train_x, train_y, classes, train_files, train_skipped = _read_image_folder(
        root / "train", cfg.stored_side, cfg.on_unreadable
    )
    test_x, test_y, test_classes, test_files, test_skipped = _read_image_folder(
        root / "test", cfg.stored_side, cfg.on_unreadable
    )
    if test_classes != classes:
        raise UserError(f"{root}: train/ and test/ hold different class folders")
    _refuse_shared_files(train_files, test_files)
    skipped = [printable(path) for path in train_skipped + test_skipped]
    return ImageSplits(train_x, train_y, test_x, test_y, classes, len(skipped), tuple(skipped[:UNREADABLE_EXAMPLES]))


UNREADABLE_EXAMPLES = 5
"""How many skipped paths the prepared metadata keeps (the count covers all of them)."""


def _refuse_shared_files(train_files: list[str], test_files: list[str]) -> None:
    """The same image file (byte for byte) in train/ and test/ would leak test images into training."""
    train = {file_digest(Path(path)) for path in train_files}
    shared = [path for path in test_files if file_digest(Path(path)) in train]
    if shared:
        raise UserError(
            f"{len(shared)} test image(s) also appear in train/ (first: {shared[0]}): "
            "the test split must hold unseen images"
        )


def decode_pool(folder: Path, size: int, on_unreadable: str) -> tuple[Pool, list[str]]:
    """The unlabelled images of `data.pool`: every visible image file under `folder` at any depth, decoded as an
    ImageFolder's images are (`gsimclr.data.image_files`), keyed by its path relative to `folder`; and the files
    left out as undecodable."""
    if folder.is_dir() and {"train", "test"} <= {entry.name for entry in os.scandir(folder) if entry.is_dir()}:
        raise UserError(
            f"data.pool={folder} holds train/ and test/: that is a labelled dataset (data.root); data.pool expects "
            "a folder of unlabelled images at any depth, e.g. <pool>/*.jpg or <pool>/<any>/<folders>/*.png"
        )
    files = image_tree(folder)
    if not files:
        raise UserError(
            f"data.pool={folder} holds no image files (expected unlabelled images at any depth, e.g. <pool>/*.jpg "
            "or <pool>/<any>/<folders>/*.png)"
        )
    decoded = decode_files(files, size, on_unreadable, folder)
    if not decoded.kept:
        raise UserError(f"data.pool={folder}: none of its {len(files)} image files could be decoded")
    paths = tuple(str(Path(files[i]).relative_to(folder)) for i in decoded.kept)
    return Pool(decoded.images, paths), decoded.skipped


def _refuse_test_images_in_pool(pool: Pool, data: ImageSplits, folder: Path) -> None:
    """A test image in the pool would be pretrained on: the same decoded pixels in both are refused (compared by a
    digest of each image's pixels, so the test split is never held twice)."""

    def digest(image: torch.Tensor) -> bytes:
        return hashlib.blake2b(image.contiguous().numpy().data, digest_size=16).digest()

    test = {digest(image) for image in data.test_x}
    shared = [path for image, path in zip(pool.images, pool.paths, strict=True) if digest(image) in test]
    if shared:
        raise UserError(
            f"{len(shared)} image(s) of data.pool={folder} are test images (first: {printable(shared[0])}): "
            "the test split must hold images no stage trained on"
        )


def decode_dataset(cfg: DataConfig) -> ImageSplits:
    """Decode the configured dataset at its stored size (`data.stored_size`, default `data.image_size`), with its
    unlabelled pool where `data.pool` names one; a missing or malformed one is a one-line `UserError`."""
    loaders = {"digits": _load_digits, "cifar10": _load_cifar10, "imagefolder": _load_imagefolder}
    data = loaders[cfg.name](cfg)
    if data.num_classes < 2:
        raise UserError(
            f"{cfg.name} dataset at {cfg.root} has {data.num_classes} class: the evaluation needs at least two classes"
        )
    if cfg.pool is None:
        return data
    pool, skipped = decode_pool(Path(cfg.pool), cfg.stored_side, cfg.on_unreadable)
    _refuse_test_images_in_pool(pool, data, Path(cfg.pool))
    examples = (*data.unreadable_examples, *(printable(path) for path in skipped))[:UNREADABLE_EXAMPLES]
    return replace(data, pool=pool, unreadable=data.unreadable + len(skipped), unreadable_examples=examples)


def load_dataset(cfg: DataConfig) -> ImageSplits:
    """Decode the configured dataset now (stages read the `prepare` stage's arrays: `prepared.load`)."""
    return long_tailed(decode_dataset(cfg), cfg)
