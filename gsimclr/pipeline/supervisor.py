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
    stopped = False
    while child.poll() is None:
        if not stopped and os.getppid() != scheduler:  # re-parented: the scheduler has died
            stop_group()
            stopped = True
        time.sleep(POLL_SECONDS)
    return child.returncode


if __name__ == "__main__":
    sys.exit(supervise(int(sys.argv[1]), sys.argv[2:]))
