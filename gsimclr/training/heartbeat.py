"""Progress lines inside an epoch for a log without a terminal.

On a terminal the progress bar shows the step, the speed and the time left; written to a file (a DVC stage's log,
`nohup`, a batch job) tqdm's bar is off and the only line used to come at the end of the epoch -- on a 2-core AVX2
machine 7-8 minutes of silence per CIFAR-10 epoch, indistinguishable from a hang. lightly and solo-learn keep
printing through Lightning's progress in that case; this is the same for `gsimclr`'s own loop: a line at most
every `every_s` seconds with the step, images per second and the epoch's ETA.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Optional, TextIO


def clock_text(seconds: float) -> str:
    """`seconds` as m:ss, or h:mm:ss from an hour on."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Heartbeat:
    """Call `step` after every training step; it prints a line when `every_s` seconds have passed since the
    epoch began or since the last line."""

    def __init__(
        self,
        desc: str,
        epoch: int,
        epochs: int,
        steps: int,
        every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        out: Optional[TextIO] = None,
    ) -> None:
        self.desc, self.epoch, self.epochs, self.steps = desc, epoch, epochs, steps
        self.every_s, self.clock, self.out = every_s, clock, out
        self.started = self.last = clock()
        self.images = 0

    def step(self, done: int, images: int) -> None:
        """`done` steps of the epoch finished, the last of them on `images` images."""
        self.images += images
        now = self.clock()
        if now - self.last < self.every_s or done >= self.steps:
            return  # the epoch's own line follows the last step
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        eta = elapsed / done * (self.steps - done)
        print(
            f"{self.desc} epoch {self.epoch}/{self.epochs} step {done}/{self.steps} "
            f"{self.images / elapsed:.0f} images/s, epoch ETA {clock_text(eta)}",
            file=self.out or sys.stderr,  # looked up now: the stream may have been redirected since
            flush=True,
        )
