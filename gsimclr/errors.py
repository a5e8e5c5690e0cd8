"""Error types that the CLI maps to exit codes, so user mistakes never end in a traceback."""

from __future__ import annotations


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
