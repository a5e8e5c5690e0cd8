"""DVC's stage-lock file torn by a killed run, removed before the next study starts.

DVC records which running stage reads and writes which path in `.dvc/tmp/rwlock`, rewriting the file in place
(truncate, then write JSON) under its guard `.dvc/tmp/rwlock.lock`. A DVC process killed between the two -- a study
stopped with SIGKILL or SIGTERM while one of its stages was starting or ending -- leaves the file empty or cut short,
and from then on every `dvc` command in the project fails with "Unable to read RWLock-file '.dvc/tmp/rwlock'. JSON
structure is corrupted" (treeverse/dvc#7615; DVC's own advice is to delete the file). The checkpoints are intact,
but the resume the user was told to run would fail. A torn file holds no entry worth keeping (DVC itself drops the
entries of processes that are gone), so the scheduler, holding the project's study lock, deletes it under DVC's own
guard and says so in one line; a readable file is left to DVC.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dvc.lock import LockError, make_lock

RWLOCK = Path(".dvc") / "tmp" / "rwlock"


def torn(path: Path) -> bool:
    """Whether `path` exists and is not the JSON object DVC writes."""
    try:
        return not isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):  # unreadable, empty, cut short, not UTF-8
        return True


def remove_torn_rwlock(root: Path = Path(".")) -> None:
    """Delete the project's DVC stage-lock file if a killed DVC process left it torn. Checked again under DVC's
    guard, so a DVC process writing it right now is waited for, never cut short; a guard held for longer than DVC's
    own retries leaves the file to DVC."""
    path = root / RWLOCK
    if not torn(path):
        return
    try:
        with make_lock(str(path.with_name("rwlock.lock")), tmp_dir=str(path.parent)):
            if not torn(path):
                return
            path.unlink()
    except LockError:
        return
    print(
        f"note: removed {RWLOCK}, DVC's stage-lock file, torn by a run that was killed (treeverse/dvc#7615)",
        file=sys.stderr,
    )
