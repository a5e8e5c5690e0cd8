"""The supervisor of one stage that `gsimclr repro` runs: the stage's DVC process, and the `gsimclr` stage it
starts, never outlive the scheduler, however the scheduler ends.

`gsimclr repro` starts every stage as `python -m gsimclr.pipeline.supervisor SCHEDULER_PID COMMAND...` in a session
of its own. The supervisor runs COMMAND (`dvc repro --single-item STAGE`) in its process group -- DVC runs the
stage's command in the same group -- and watches its parent: when the scheduler is gone (Ctrl-C and SIGTERM, but
also SIGKILL, an OOM kill or a closed terminal multiplexer, which run no cleanup of the scheduler's), or when the
supervisor itself is sent SIGTERM or SIGINT, it sends SIGTERM to the whole group. The `gsimclr` stage then stops as
on Ctrl-C, keeping its resume checkpoint; DVC records nothing for a stage that did not finish, and a re-run
rebuilds only what is missing. Standard library only: it starts in a fraction of a second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

POLL_SECONDS = 0.25
"""How often the supervisor checks that its scheduler is still its parent."""
GRACE_SECONDS = 2.0
"""How long the stage has to stop on its own (write its last line, close its MLflow run) once its scheduler is gone,
before the group is killed: a loaded machine can take seconds to tear a torch process down, and nobody waits for it.
Checkpoints and outputs are written atomically, so the kill loses nothing already written."""


def stop_group(*_: Any) -> None:
    """SIGTERM to every process of this group (DVC and its stage); the supervisor ignores its own copy."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)


def supervise(scheduler: int, command: list[str]) -> int:
    """Run `command` until it ends; end its group when `scheduler` stops being this process's parent."""
    child = subprocess.Popen(command)
    signal.signal(signal.SIGTERM, stop_group)
    signal.signal(signal.SIGINT, stop_group)
    while child.poll() is None:
        if os.getppid() != scheduler:  # re-parented: the scheduler has died, and no one will wait for the stage
            orphaned()
        time.sleep(POLL_SECONDS)
    if os.getppid() != scheduler:
        orphaned()  # DVC ended at once; the stage it ran may still be stopping
    return child.returncode


def orphaned() -> None:
    """The scheduler is gone: ask the group to stop, give it `GRACE_SECONDS`, then kill what is left, the
    supervisor included (its work ends with the group)."""
    stop_group()
    time.sleep(GRACE_SECONDS)
    os.killpg(0, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(supervise(int(sys.argv[1]), sys.argv[2:]))
