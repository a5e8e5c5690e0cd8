"""The committed dvc.lock describes the committed code: every stage's recorded code hash is the hash of
the file as it is now, so `dvc status` on a fresh clone reports the committed results as current, and a
code change that skipped `dvc repro` (or a justified `dvc commit`) fails here."""

import hashlib

import pytest
import yaml
from conftest import REPO

LOCK = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(LOCK))
def test_recorded_code_hashes_match_the_files(stage):
    drifted = [
        dep["path"]
        for dep in LOCK[stage].get("deps", [])
        if dep["path"].startswith("gsimclr/")
        and dep["path"].endswith(".py")
        and hashlib.md5((REPO / dep["path"]).read_bytes()).hexdigest() != dep["md5"]
    ]
    assert not drifted, (
        f"dvc.lock is stale for {stage}: {drifted} (run `dvc repro`, or `dvc commit` if no output changes)"
    )


def test_every_stage_of_the_default_study_is_locked():
    seeds = yaml.safe_load((REPO / "params.yaml").read_text())["seeds"]
    expected = {
        f"{name}@{seed}"
        for name in ("train", "cluster", "pretrain_simclr", "pretrain_gsimclr", "supervised")
        for seed in seeds
    }
    expected |= {
        f"{name}@{method}-{seed}"
        for name, methods in (("evaluate", ("simclr", "gsimclr")), ("controls", ("random_init", "pixels")))
        for method in methods
        for seed in seeds
    }
    assert expected | {"prepare", "compare"} == set(LOCK)
