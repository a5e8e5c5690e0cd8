"""The committed dvc.lock describes the committed code: every stage's recorded code hash (files and whole
packages, as DVC itself hashes them) is the hash of the code as it is now, so `dvc status` on a fresh clone
reports the committed results as current, and a code change that skipped `dvc repro` (or a justified
`dvc commit`) fails here."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

LOCK = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]


@pytest.fixture(scope="module")
def status() -> dict:
    """`dvc status --json` of the repository: per stage, what changed since dvc.lock was written."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("stage", sorted(LOCK))
def test_recorded_code_hashes_match_the_code(stage, status):
    changes = [entry for entry in status.get(stage, []) if isinstance(entry, dict)]
    drifted = [
        path
        for entry in changes
        for path, how in entry.get("changed deps", {}).items()
        if path.startswith("gsimclr/") and how == "modified"
    ]
    assert not drifted, (
        f"dvc.lock is stale for {stage}: {drifted} (run `dvc repro`, or `dvc commit` if no output changes)"
    )


def test_every_stage_of_the_default_study_is_locked():
    seeds = yaml.safe_load((REPO / "params.yaml").read_text())["seeds"]
    expected = {
        f"{name}@{seed}"
        for name in ("autoencoder", "cluster", "pretrain_simclr", "pretrain_gsimclr", "supervised")
        for seed in seeds
    }
    expected |= {
        f"{name}@{method}-{seed}"
        for name, methods in (("evaluate", ("simclr", "gsimclr")), ("controls", ("random_init", "pixels")))
        for method in methods
        for seed in seeds
    }
    assert expected | {"prepare", "compare"} == set(LOCK)
