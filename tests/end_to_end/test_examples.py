"""The examples run as a user would run them, and show what they say they show."""

import re
import subprocess
import sys

from conftest import REPO


def test_the_minimal_example_trains_g_simclr_from_the_package_blocks():
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "minimal_gsimclr.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert re.search(r"pseudo labels: 16 clusters", result.stdout), result.stdout
    losses = [float(x) for x in re.findall(r"G-SimCLR epoch \d: NT-Xent ([0-9.]+)", result.stdout)]
    assert len(losses) == 2 and losses[1] < losses[0], result.stdout  # it learns: the loss falls
