"""End to end: `dvc repro` of a tiny config in a temporary copy of the repository, through the CLI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, TINY_PARAMS, write_params

pytestmark = pytest.mark.slow
SEEDS = [0, 1]


def per_seed(*stages: str) -> set[str]:
    return {f"{stage}{'-' if '@' in stage else '@'}{seed}" for stage in stages for seed in SEEDS}


def sh(cmd: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    for name in ("gsimclr", ".dvc", "tests"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("tmp", "cache", "__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    write_params(root / "params.yaml", dict(TINY_PARAMS, seeds=SEEDS))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    sh(["git", "init", "-q"], root, env)
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "init"], root, env)
    return root, env


def test_repro_runs_every_stage_and_writes_the_tables(project):
    root, env = project
    output = sh(["dvc", "repro"], root, env)
    assert ran(output) == per_seed(
        "train",
        "cluster",
        "pretrain_simclr",
        "pretrain_gsimclr",
        "evaluate@simclr",
        "evaluate@gsimclr",
        "controls@random_init",
        "controls@pixels",
        "supervised",
    ) | {"compare"}
    results = (root / "results" / "results.md").read_text()
    for needle in (
        "2 seeds: 0, 1",
        "Table II",
        "Table III",
        "| P1 |",
        "| fine-tune |",
        "| seed 0 | seed 1 |",
        "Fully supervised baseline",
        "mlflow ui",
        "## Controls — did pretraining learn anything?",
        "| Raw pixels | pixels |",
        "| Random init (untrained) | from scratch |",
    ):
        assert needle in results
    rows = (root / "results" / "results.csv").read_text().splitlines()
    assert rows[0] == "table,metric,method,representation,seed,test_acc,paper" and len(rows) == 1 + len(SEEDS) * (
        1 + 9 + 1 + 3
    )
    for figure in ("accuracy_by_seed.png", "pretrain_loss.png"):
        assert (root / "results" / figure).stat().st_size > 1000
    for seed in SEEDS:
        labels = (root / "artifacts" / f"seed{seed}" / "pseudo_labels.csv").read_text().splitlines()
        assert labels[0] == "index,cluster" and len(labels) > 1000


def test_second_repro_does_nothing(project):
    root, env = project
    output = sh(["dvc", "repro"], root, env)
    assert ran(output) == set()


def test_mlflow_holds_tagged_linked_runs(project):
    root, env = project
    code = (
        "import mlflow; mlflow.set_tracking_uri('sqlite:///" + str(root / "mlruns" / "mlflow.db") + "');"
        "runs = mlflow.search_runs(experiment_names=['gsimclr-digits']);"
        "print(len(runs)); print(sorted(set(runs['tags.stage'])));"
        "compare = runs[runs['tags.stage'] == 'compare'].iloc[0]['run_id'];"
        "print((runs['tags.mlflow.parentRunId'] == compare).sum())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
    ).stdout
    count, stages, children = out.strip().splitlines()
    assert int(count) == 9 * len(SEEDS) + 1
    assert stages == "['cluster', 'compare', 'evaluate', 'pretrain', 'train']"
    assert int(children) == 9 * len(SEEDS)


def test_changing_a_pretrain_param_reruns_only_downstream(project):
    root, env = project
    params = dict(TINY_PARAMS, seeds=SEEDS, pretrain={**TINY_PARAMS["pretrain"], "temperature": 0.2})
    write_params(root / "params.yaml", params)
    output = sh(["dvc", "repro"], root, env)
    assert ran(output) == per_seed("pretrain_simclr", "pretrain_gsimclr", "evaluate@simclr", "evaluate@gsimclr") | {
        "compare"
    }


def test_exp_run_with_set_param_and_metrics_show(project):
    root, env = project
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "baseline"], root, env)
    output = sh(["dvc", "exp", "run", "-S", "evaluate.linear.c_grid=[1.0]"], root, env)
    assert ran(output) == per_seed("evaluate@simclr", "evaluate@gsimclr", "controls@random_init", "controls@pixels") | {
        "compare"
    }
    shown = sh(["dvc", "metrics", "show"], root, env)
    assert "linear_P1_test_acc" in shown and "nmi" in shown
