"""Image files on disk -> uint8 tensors: which files count as images, and decoding them safely.

Shared by the labelled ImageFolder dataset (`gsimclr.data.loaders`) and `gsimclr embed`'s folder of images at any
depth, so both read the same files the same way: visible files with torchvision's image extensions (hidden folders
and files such as `.ipynb_checkpoints/` or `.DS_Store` are not data), regular files only (a FIFO named `*.png`
would block the decoder forever), converted to 8-bit RGB, resized on the shorter side and centre-cropped to
`size` x `size`; a file that cannot be decoded is left out and counted (`on_unreadable: skip`), or stops the run
(`error`).
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gsimclr.system.errors import UserError


def printable(text: str) -> str:
    """`text` as one safe line: control characters (a newline in a file name could fake an `error:` line)
    and undecodable bytes escaped."""
    return text if text.isprintable() else ascii(text)[1:-1]


def is_visible_image(path: str) -> bool:
    """A file name with an image extension that is not hidden."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return not Path(path).name.startswith(".") and path.lower().endswith(IMG_EXTENSIONS)


def refuse_symlink_loops(folder: Path) -> None:
    """Folders are walked through directory links, so a link to an ancestor would be walked forever."""
    for current, dirs, _ in os.walk(folder):
        for name in dirs:
            link = Path(current) / name
            if link.is_symlink() and Path(current).resolve().is_relative_to(link.resolve()):
                raise UserError(f"{link} links back to {link.resolve()}: a symlink loop in the image folder")


def image_tree(folder: Path) -> list[str]:
    """Every visible image file under `folder`, at any depth, in sorted order (hidden folders skipped)."""
    if not folder.is_dir():
        raise UserError(f"image folder not found: {folder}")
    refuse_symlink_loops(folder)
    found: list[str] = []
    for current, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        found.extend(str(Path(current) / name) for name in sorted(files) if is_visible_image(name))
    return found


def rgb_image(path: str):
    """The image as 8-bit RGB, and the mode it was stored in."""
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB"), image.mode


@dataclass
class Decoded:
    """The decoded images (uint8, N x 3 x size x size), which of the given files they are, and the files left out
    (undecodable) or converted (not 8-bit RGB or grey)."""

    images: torch.Tensor
    kept: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    converted: list[str] = field(default_factory=list)


def decode_files(paths: list[str], size: int, on_unreadable: str, where: Path) -> Decoded:
    """Decode `paths` (files under `where`, named in messages) at `size` x `size`; see the module docstring."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import v2
    from tqdm.auto import tqdm

    transform = v2.Compose([v2.PILToTensor(), v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    images, kept, skipped, converted = [], [], [], []
    for i, path in enumerate(tqdm(paths, desc=f"decoding {where.name}", leave=False, disable=None)):
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise OSError(f"not a regular file: {path}")
            image, mode = rgb_image(path)
            images.append(transform(image))
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, struct.error):
            if on_unreadable == "error":
                raise UserError(
                    f"unreadable image {printable(path)} (data.on_unreadable: skip would leave it out and count it)"
                ) from None
            skipped.append(path)
            continue
        kept.append(i)
        if mode not in ("RGB", "L"):
            converted.append(f"{path} ({mode})")
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable image(s) in {where} (first: {printable(skipped[0])})")
    if converted:
        print(
            f"note: converted {len(converted)} image(s) that are not 8-bit RGB or grey to RGB in {where} "
            f"(first: {printable(converted[0])})"
        )
    stacked = torch.stack(images) if images else torch.empty(0, 3, size, size, dtype=torch.uint8)
    return Decoded(stacked, kept, skipped, converted)
