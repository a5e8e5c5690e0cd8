"""`make install` on a fresh checkout at two revisions of this project, in one run, and what a stage then
pays to import.

The quickstart's first step is the install (a fresh venv, the CUDA build of torch unpacked from pip's cache):
on 2 cores about a third of `make study`. Each revision is checked out into a scratch folder (`git
worktree`), `make install` runs there, then one process imports every stage module as a stage would (with
`PYTHONDONTWRITEBYTECODE=1`, so only .pyc files the install left are used). The revision given by `--after`
runs first, so it is the one that meets a cold page cache. Each venv is deleted before the next is made
(each takes ≈ 5.5 GB). Not a test: it never fails on speed.

    python -m benchmarks.install [--before 23ccdb4] [--after HEAD]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.machine import describe

STAGE_IMPORTS = (
    "import dvc.repo, gsimclr.cli, gsimclr.pipeline.tracking, gsimclr.stages.pretrain, gsimclr.stages.evaluate, "
    "gsimclr.stages.cluster, gsimclr.stages.compare"
)


def install(revision: str, scratch: Path) -> tuple[float, float, float]:
    """(install wall s, install CPU s, stage-import CPU s) of `make install` at `revision`."""
    tree = scratch / revision
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), revision], check=True)
    try:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "MAKE"))}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        make = subprocess.run(["make", "install"], cwd=tree, env=env, capture_output=True, text=True)
        if make.returncode:
            sys.exit(f"make install failed at {revision}:\n{make.stdout[-2000:]}{make.stderr[-2000:]}")
        wall = time.perf_counter() - start
        mid = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [str(tree / ".venv/bin/python"), "-c", STAGE_IMPORTS],
            cwd=tree,
            env=env | {"PYTHONDONTWRITEBYTECODE": "1"},
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=True)
        shutil.rmtree(tree, ignore_errors=True)

    def cpu(a: resource.struct_rusage, b: resource.struct_rusage) -> float:
        return (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)

    return wall, cpu(before, mid), cpu(mid, after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="23ccdb4", help="revision whose pip byte-compiles every module")
    parser.add_argument("--after", default="HEAD")
    args = parser.parse_args()
    print(describe(torch.device("cpu")))
    print(f"make install on a fresh checkout, then one stage's imports: {args.before} vs {args.after}\n")
    with tempfile.TemporaryDirectory(prefix="gsimclr-install-") as scratch:
        after = install(args.after, Path(scratch))
        before = install(args.before, Path(scratch))
    print(f"{'':34}{'before':>10}{'after':>10}{'ratio':>8}")
    for i, what in enumerate(("install wall time (s)", "install CPU time (s)", "stage imports CPU time (s)")):
        print(f"{what:34}{before[i]:10.1f}{after[i]:10.1f}{after[i] / before[i]:8.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
