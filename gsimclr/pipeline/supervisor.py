"""The supervisor of one stage that `gsimclr repro` runs: the stage's DVC process, and the `gsimclr` stage it
starts, never outlive the scheduler, however the scheduler ends -- and leave no zombie behind.

`gsimclr repro` starts every stage as `python -m gsimclr.pipeline.supervisor SCHEDULER_PID COMMAND...` in a session
of its own. The supervisor runs COMMAND (`dvc repro --single-item STAGE`) in a process group of its own -- DVC runs
the stage's command in the same group -- and watches its parent: when the scheduler is gone (Ctrl-C and SIGTERM, but
also SIGKILL, an OOM kill or a closed terminal multiplexer, which run no cleanup of the scheduler's), or when the
supervisor itself is sent SIGTERM or SIGINT, it sends SIGTERM to that group. The `gsimclr` stage then stops as on
Ctrl-C, keeping its resume checkpoint; DVC records nothing for a stage that did not finish, and a re-run rebuilds
only what is missing.

The supervisor stays outside the group it stops so that it can reap what it stopped before it exits: DVC's output
locks name DVC's PID, and DVC (through `psutil.pid_exists`) counts an unreaped zombie as a live holder, so a re-run
started the moment the old processes died would otherwise be refused until the init process got round to reaping
them. On Linux the supervisor is also the child subreaper of the group, so the stage that DVC started is reaped here
too. Standard library only: it starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

POLL_SECONDS = 0.25
"""How often the supervisor checks that its scheduler is still its parent."""
GRACE_SECONDS = 2.0
"""How long the stage has to stop on its own (write its last line, close its MLflow run) once its scheduler is gone,
before the group is killed: a loaded machine can take seconds to tear a torch process down, and nobody waits for it.
Checkpoints and outputs are written atomically, so the kill loses nothing already written."""
PR_SET_CHILD_SUBREAPER = 36
"""prctl(2): orphaned descendants are re-parented to this process instead of to init."""


def become_subreaper() -> None:
    """Adopt the group's orphans (Linux; elsewhere init reaps them, as before)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def signal_group(group: int, signum: int) -> None:
    """`signum` to every process of `group`; a group that has already ended is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def reap(deadline: float) -> bool:
    """Wait for this process's children (the command and adopted orphans) until `deadline`; True when none is left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def supervise(scheduler: int, command: list[str]) -> int:
    """Run `command` until it ends, or until `scheduler` stops being this process's parent (it has died, and no one
    will wait for the stage); then end whatever is left of its group and reap it."""
    become_subreaper()
    child = subprocess.Popen(command, start_new_session=True)  # its own group, this process outside it
    stop = lambda *_: signal_group(child.pid, signal.SIGTERM)  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while child.poll() is None and os.getppid() == scheduler:
        time.sleep(POLL_SECONDS)
    if os.getppid() != scheduler:
        stop()  # DVC may have ended at once, but the stage it ran may still be stopping
    end_group(child.pid)
    return 1 if child.returncode is None else child.returncode  # None: reaped by `end_group`, never finished


def end_group(group: int) -> None:
    """Give what is left of `group` `GRACE_SECONDS` to stop, kill the rest, and reap every child and adopted
    orphan, so that no process of the stage is left, not even as a zombie."""
    if not reap(time.monotonic() + GRACE_SECONDS):
        signal_group(group, signal.SIGKILL)
        reap(time.monotonic() + GRACE_SECONDS)  # bounded: a process that left the group is not waited for forever


if __name__ == "__main__":
    sys.exit(supervise(int(sys.argv[1]), sys.argv[2:]))
