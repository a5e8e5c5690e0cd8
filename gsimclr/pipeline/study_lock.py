"""One study at a time per project: `gsimclr repro` and `gsimclr study` hold `.gsimclr/study.lock` while they run.

Two schedulers in one project would start the same stages twice; DVC then refuses the second one's stages with a
message whose last line advises deleting a lock that a live process holds. Instead, a second scheduler stops at
once with one line naming the running one (PID, command, the stages it is running) and saying to wait for it or
stop it. The lock is an advisory `flock` on the file: the kernel releases it when its holder ends, however it ends,
so a killed scheduler never leaves a stale lock behind; the file's text only describes the holder. Whoever takes the
lock also clears the one thing a killed study can leave that would stop the next: DVC's torn stage-lock file
(`dvc_rwlock`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Optional

from gsimclr.pipeline.dvc_rwlock import remove_torn_rwlock
from gsimclr.system.errors import UserError

_held: Optional[Callable[[Sequence[str]], None]] = None
"""This process's holder, so that `gsimclr study` can run its stages under the lock it already holds."""


def describe(handle: IO[str], running: Sequence[str]) -> None:
    """Write who holds the lock and which stages it is running (read by a refused second scheduler)."""
    handle.seek(0)
    handle.truncate()
    holder = {"pid": os.getpid(), "command": shlex.join(["gsimclr", *sys.argv[1:]]), "running": list(running)}
    handle.write(json.dumps(holder))
    handle.flush()


def refusal(path: Path) -> UserError:
    """The one line a second scheduler stops with."""
    try:
        holder = json.loads(path.read_text())
        running = ", ".join(holder["running"]) or "none yet"
        who = f"PID {holder['pid']} (`{holder['command']}`, running: {running})"
    except (OSError, ValueError, KeyError, TypeError):
        who = "another process"
    return UserError(
        f"another study is running in this project: {who}; wait for it to finish, or stop it with "
        "`kill PID` (its stages keep their checkpoints), then run this again"
    )


@contextlib.contextmanager
def one_study_at_a_time(root: Path = Path(".")) -> Iterator[Callable[[Sequence[str]], None]]:
    """Hold the project's study lock (re-entrant within this process); yields a function that records the
    stages now running. A second holder in another process is refused with a `UserError`."""
    global _held
    if _held is not None:
        yield _held
        return
    path = root / ".gsimclr" / "study.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise refusal(path) from None
        describe(handle, [])
        remove_torn_rwlock(root)
        _held = lambda running: describe(handle, running)  # noqa: E731
        try:
            yield _held
        finally:
            _held = None
            handle.truncate(0)
