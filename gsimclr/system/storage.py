"""Atomic writes and safe loads: a killed stage never leaves a half-written file in place of a good one."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Optional, TypeVar

import torch

from gsimclr.system.errors import DiskFullError, MissingUpstreamError, UserError
from gsimclr.system.inputs import read_text


def _fsync_directory(folder: Path) -> None:
    """Make a rename durable: without it a power cut can forget the new directory entry."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_mode() -> int:
    """The mode `open` would give a new file under this process's umask (mkstemp's own is 0600, which would
    hide metrics and reports from the rest of a group that shares the project)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()  # read once, at import, before any thread could create a file meanwhile


@contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside `path`, fsync, then rename over it; on error `path` is untouched.

    Temporary files that a killed earlier write of `path` left behind are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                f"no space left on device while writing {path} (its previous version is intact): "
                "free some space and re-run"
            ) from None
        raise


def hash_file(digest: Any, path: Path, offset: int = 0) -> None:
    """Feed a file's bytes from `offset` on into `digest` (a hashlib object), 16 MiB at a time."""
    with path.open("rb") as handle:
        handle.seek(offset)
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)


def file_digest(path: Path) -> str:
    """Short SHA-256 of a file's bytes (identity of an upstream artifact); a missing file is a
    `MissingUpstreamError`."""
    digest = hashlib.sha256()
    try:
        hash_file(digest, path)
    except FileNotFoundError:
        raise MissingUpstreamError(f"not found: {path} (run the stage that makes it first)") from None
    return digest.hexdigest()[:16]


def write_text(path: Path, text: str) -> None:
    """Write text atomically."""
    with atomic_open(path) as handle:
        handle.write(text)


def save_torch(obj: Any, path: Path) -> None:
    """torch.save atomically (a kill mid-write leaves the previous file intact)."""
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


def load_torch(path: Path, what: str = "checkpoint") -> dict:
    """Load with `weights_only=True` (no arbitrary code from a file); a bad file is a `UserError`."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except Exception as exc:  # noqa: BLE001 (torch raises many types for non-checkpoint bytes)
        raise UserError(f"{path} is not a valid {what} ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a valid {what} (holds {type(obj).__name__})")
    return obj


Module = TypeVar("Module", bound=torch.nn.Module)


def load_upstream(path: Path, what: str, rerun: str, build: Callable[[dict], Module], mismatch: str) -> Module:
    """The network an upstream stage saved at `path`: built by `build(checkpoint)` and loaded in eval mode.

    A missing file is a `MissingUpstreamError` naming the command `rerun` that makes it; weights that do
    not fit the network the params describe are a `UserError` saying `mismatch`."""
    if not path.exists():
        raise MissingUpstreamError(f"{what} not found: {path} (run `{rerun}` first)")
    state = load_torch(path, f"{what} checkpoint")
    model = build(state)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError):
        raise UserError(f"{path} {mismatch} (re-run `{rerun}`)") from None
    return model.eval()


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file a stage wrote; a missing or unreadable one is a one-line error naming `what`."""
    if not path.exists():
        raise MissingUpstreamError(f"{what} not found: {path} (run the stage that makes it first)")
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON") from None


def write_csv(path: Path, rows: list[dict[str, Any]], columns: Optional[list[str]] = None) -> None:
    """Rows of one schema as CSV (DVC plots and spreadsheets read it); `columns` names them when `rows` may be empty."""
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
