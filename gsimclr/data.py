"""Datasets decoded once into in-memory uint8 tensors, plus the seeded splits every stage shares.

All supported datasets fit in memory at the resolutions used here (CIFAR-10: 150 MB), so stages index
tensors directly instead of decoding images per step; that keeps the data path off the training profile.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from gsimclr.config import DataConfig
from gsimclr.errors import UserError

CIFAR_DIRNAME = "cifar-10-batches-py"
CIFAR_HELP = (
    "get it with data.download: true (needs network), or unpack the python version from "
    "https://www.cs.toronto.edu/~kriz/cifar.html so that {root}/cifar-10-batches-py exists"
)


@dataclass(frozen=True)
class ImageSplits:
    """Train and test images as uint8 (N, C, H, W) tensors with integer class labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class LabelSplit:
    """Indices into the training split: `fit` trains, `val` selects models and stops early."""

    fit: np.ndarray
    val: np.ndarray


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1]."""
    return images.float().div_(255.0)


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
    images = _resize(images, cfg.image_size)
    return ImageSplits(
        images[train_idx], labels[train_idx], images[test_idx], labels[test_idx], [str(c) for c in range(10)]
    )


def _read_cifar_batches(folder: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the documented CIFAR-10 python format (pickled dicts with b'data' and b'labels')."""
    data, labels = [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise UserError(f"CIFAR-10 batch missing: {path}")
        try:
            with path.open("rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            array = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            data.append(array)
            labels.extend(int(label) for label in batch[b"labels"])
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
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
        with meta.open("rb") as handle:
            classes = [name.decode() for name in pickle.load(handle, encoding="bytes")[b"label_names"]]
    return ImageSplits(
        _resize(train_x, cfg.image_size), train_y, _resize(test_x, cfg.image_size), test_y, classes
    )


def _read_image_folder(folder: Path, size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Decode an ImageFolder tree once; unreadable images are skipped with a counted warning.

    One truncated JPEG among thousands should not end a study, but silently dropping data would hide
    a broken copy, so the count and the first offending path are printed.
    """
    from PIL import UnidentifiedImageError
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2
    from tqdm.auto import tqdm

    if not folder.is_dir():
        raise UserError(f"image folder not found: {folder} (expected <root>/train/<class>/*.jpg and <root>/test/...)")
    try:
        dataset = ImageFolder(str(folder))
    except (FileNotFoundError, RuntimeError) as exc:
        raise UserError(f"{folder}: {exc}") from None
    transform = v2.Compose([v2.PILToTensor(), v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    images, labels, skipped = [], [], []
    for path, target in tqdm(dataset.samples, desc=f"decoding {folder.name}", leave=False, disable=None):
        try:
            images.append(transform(_rgb_loader(path)))
            labels.append(target)
        except (UnidentifiedImageError, OSError, SyntaxError):
            skipped.append(path)
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable image(s) in {folder} (first: {skipped[0]})")
    missing = sorted(set(range(len(dataset.classes))) - set(labels))
    if missing:
        raise UserError(f"{folder}: no readable image in class folder(s) {[dataset.classes[c] for c in missing]}")
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64), list(dataset.classes)


def _rgb_loader(path: str):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def _load_imagefolder(cfg: DataConfig) -> ImageSplits:
    root = Path(cfg.root or ".")
    train_x, train_y, classes = _read_image_folder(root / "train", cfg.image_size)
    test_x, test_y, test_classes = _read_image_folder(root / "test", cfg.image_size)
    if test_classes != classes:
        raise UserError(f"{root}: train/ and test/ hold different class folders")
    return ImageSplits(train_x, train_y, test_x, test_y, classes)


def load_dataset(cfg: DataConfig) -> ImageSplits:
    """Load the configured dataset; a missing or malformed one is a one-line `UserError`."""
    loaders = {"digits": _load_digits, "cifar10": _load_cifar10, "imagefolder": _load_imagefolder}
    data = loaders[cfg.name](cfg)
    if data.num_classes < 2:
        raise UserError(f"{cfg.name} dataset at {cfg.root} has {data.num_classes} class: "
                        "the evaluation needs at least two classes")
    if cfg.imbalance_ratio > 1:
        keep = torch.as_tensor(long_tailed_indices(data.train_y.numpy(), cfg.imbalance_ratio, cfg.imbalance_seed))
        data = replace(data, train_x=data.train_x[keep], train_y=data.train_y[keep])
    return data


def long_tailed_counts(class_sizes: np.ndarray, ratio: float) -> np.ndarray:
    """Images kept per class: exponential decay from the smallest class size to 1/ratio of it (at least 1)."""
    n_classes, head = len(class_sizes), int(class_sizes.min())
    return np.maximum(1, np.floor(head * ratio ** (-np.arange(n_classes) / (n_classes - 1)))).astype(int)


def long_tailed_indices(labels: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """A seeded long-tailed subset of the training split (class 0 largest), in the original order."""
    rng = np.random.default_rng(seed)
    counts = long_tailed_counts(np.bincount(labels), ratio)
    kept = [rng.choice(np.flatnonzero(labels == c), size=n, replace=False) for c, n in enumerate(counts)]
    return np.sort(np.concatenate(kept))


def split_indices(n: int, val_fraction: float, seed: int, labels: Optional[torch.Tensor] = None) -> LabelSplit:
    """Seeded fit/val split carved from the training split (never the test split).

    Stratified by class when `labels` are given (evaluation); random otherwise (unsupervised stages,
    which must not see labels).
    """
    try:
        fit, val = train_test_split(
            np.arange(n), test_size=val_fraction, stratify=None if labels is None else labels.numpy(), random_state=seed
        )
    except ValueError as exc:
        raise UserError(f"cannot carve a validation split (data.val_fraction={val_fraction}) from {n} images: {exc}") from None
    return LabelSplit(np.sort(fit), np.sort(val))


def stratified_subset(indices: np.ndarray, labels: torch.Tensor, fraction: float, seed: int) -> np.ndarray:
    """A class-stratified `fraction` of `indices` (the 10% labels of the fine-tuning protocol)."""
    if fraction >= 1.0:
        return indices
    try:
        subset, _ = train_test_split(indices, train_size=fraction, stratify=labels[indices].numpy(), random_state=seed)
    except ValueError as exc:
        raise UserError(f"cannot draw a class-stratified {fraction:.0%} of {len(indices)} images: {exc}") from None
    return np.sort(subset)
