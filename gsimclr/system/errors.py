"""Error types that the CLI maps to exit codes, so user mistakes never end in a traceback."""

from __future__ import annotations

import errno
from typing import Optional


class UserError(Exception):
    """A mistake the user can fix (bad config, bad data path, wrong flag): exit code 2, one line."""

    exit_code = 2


class MissingUpstreamError(UserError):
    """An artifact of an earlier stage is missing (e.g. pretrain before cluster): exit code 3."""

    exit_code = 3


class TrainingDivergedError(Exception):
    """The loss became NaN/Inf; the last good checkpoint is kept: exit code 1."""

    exit_code = 1


class DiskFullError(Exception):
    """The disk filled up while writing an artifact; the previous version of it is intact: exit code 1."""

    exit_code = 1


FAULTS_BY_ERRNO = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (or the file is immutable)",
    errno.ENOTDIR: "a file stands where a folder is expected",
    errno.EEXIST: "a file stands where a folder is expected",
    errno.EISDIR: "a folder stands where a file is expected",
}
FAULTS_BY_WORDING = (
    ("database or disk is full", "the disk is full"),
    ("no space left", "the disk is full"),
    ("unexpected pos", "the disk is full or failing (torch could not finish the file)"),
    ("readonly database", "the MLflow store is read-only"),
    ("read-only file system", "the file system is read-only"),
    ("permission denied", "permission denied"),
    ("database is locked", "the MLflow store is locked by another process"),
    ("file is not a database", "the MLflow store is corrupt (not an sqlite database)"),
    ("database disk image is malformed", "the MLflow store is corrupt (its sqlite file is damaged)"),
)
"""How torch, sqlite and SQLAlchemy word the same faults when they wrap the OSError (or never raise one)."""


def environment_fault(exc: BaseException) -> Optional[str]:
    """What in the machine's environment made `exc` (a full disk, a read-only or forbidden path, a locked or
    corrupt store), in words, from the exception or anything it wraps; None when it is not such a fault."""
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in FAULTS_BY_ERRNO:
            where = f" ({current.filename})" if current.filename else ""
            return FAULTS_BY_ERRNO[current.errno] + where
        text = str(current).lower()
        for needle, said in FAULTS_BY_WORDING:
            if needle in text:
                return said
        current = current.__cause__ or current.__context__
    return None
