"""End to end: `dvc repro` of a tiny config in a temporary copy of the repository, through the CLI."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TINY_PARAMS, command_env, wait_until, write_params

pytestmark = pytest.mark.slow
SEEDS = [0, 1]


def per_seed(*stages: str) -> set[str]:
    return {f"{stage}{'-' if '@' in stage else '@'}{seed}" for stage in stages for seed in SEEDS}


def sh(cmd: list[str], cwd: Path, env: dict) -> str:
    # A hang guard, not a speed check: the whole module took ~8 min in CI on an idle 2-core AVX2 EPYC.
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=2400)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def ran(output: str) -> set[str]:
    """The stages `dvc repro` ran, or those `gsimclr repro` reports as run."""
    dvc = {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}
    return dvc | {line.split()[0] for line in output.splitlines() if line.split()[1:2] == ["ran"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    for name in ("gsimclr", ".dvc", "tests"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("tmp", "cache", "__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    write_params(root / "params.yaml", dict(TINY_PARAMS, seeds=SEEDS))
    env = command_env()
    sh(["git", "init", "-q"], root, env)
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "init"], root, env)
    return root, env


def test_repro_runs_every_stage_and_writes_the_tables(project):
    """Two stages at a time (`gsimclr repro`); the next test's plain `dvc repro` finds nothing left to do."""
    root, env = project
    output = sh(["gsimclr", "repro", "--jobs", "2"], root, env)
    assert ran(output) == per_seed(
        "autoencoder",
        "cluster",
        "pretrain_simclr",
        "pretrain_gsimclr",
        "evaluate@simclr",
        "evaluate@gsimclr",
        "controls@random_init",
        "controls@pixels",
        "supervised",
    ) | {"prepare", "compare"}
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
    # What every stage printed (its DVC log): no library warning that says nothing to a user (issue 36).
    warned = [line for log in (root / ".gsimclr" / "logs").glob("*.log") for line in log.read_text().splitlines()]
    assert not [line for line in warned if "Warning" in line or "WARNING" in line], warned
    assert not [line for line in warned if " INFO " in line], warned  # MLflow's store bookkeeping, e.g.


def test_second_repro_only_re_decodes_the_unchanged_dataset(project):
    """`prepare` always runs (DVC cannot see inside data.root); its output is unchanged, so nothing else runs:
    `gsimclr repro` left dvc.lock as `dvc repro` would have."""
    root, env = project
    output = sh(["dvc", "repro"], root, env)
    assert ran(output) == {"prepare"}


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
    assert stages == "['autoencoder', 'cluster', 'compare', 'evaluate', 'pretrain']"
    assert int(children) == 9 * len(SEEDS)


def test_models_are_registered_and_the_study_run_holds_the_comparison(project):
    root, env = project
    code = (
        "import mlflow, json; from mlflow import MlflowClient;"
        "mlflow.set_tracking_uri('sqlite:///" + str(root / "mlruns" / "mlflow.db") + "'); c = MlflowClient();"
        "exp = mlflow.get_experiment_by_name('gsimclr-digits');"
        "runs = mlflow.search_runs(experiment_names=['gsimclr-digits']);"
        "compare = c.get_run(runs[runs['tags.stage'] == 'compare'].iloc[0]['run_id']);"
        "train = c.get_run(runs[runs['tags.stage'] == 'autoencoder'].iloc[0]['run_id']);"
        "print(json.dumps({'kind': exp.tags.get('mlflow.experimentKind'),"
        " 'newest': {m: c.get_model_version_by_alias(f'gsimclr-digits-{m}', 'newest').version"
        "            for m in ('simclr', 'gsimclr', 'autoencoder')},"
        " 'compare': sorted(compare.data.metrics), 'study': compare.data.tags.get('study'),"
        " 'version': (lambda v: {'description': v.description, 'tags': v.tags})("
        "     c.get_model_version_by_alias('gsimclr-digits-gsimclr', 'newest')),"
        " 'inputs': [d.dataset.name for d in train.inputs.dataset_inputs]}))"
    )
    out = json.loads(
        subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    assert out["kind"] == "custom_model_development" and out["study"] == "workspace"
    assert all(int(version) >= len(SEEDS) for version in out["newest"].values())  # one version per seed
    # The registry alone says what a version holds and how well it did (the newest: the last seed's).
    version = out["version"]
    assert version["description"].startswith("G-SimCLR encoder pretrained on digits (seed 1, 2 epochs)")
    assert {key: version["tags"].get(key) for key in ("method", "dataset", "seed")} == {
        "method": "gsimclr",
        "dataset": "digits",
        "seed": "1",
    }
    assert version["tags"]["cpu_kind"] and len(version["tags"]["git_commit"]) == 40
    results = (root / "results" / "results.csv").read_text().splitlines()
    p3 = next(row for row in results if ",gsimclr,P3,1," in row).split(",")[5]
    assert version["tags"]["P3_test_acc"] == f"{100 * float(p3):.2f}"
    assert "gsimclr_minus_simclr/P3/test_acc/mean" in out["compare"] and "simclr/P3/test_acc/ci95" in out["compare"]
    assert out["inputs"] == ["digits"]
    model = "models:/gsimclr-digits-gsimclr@newest"
    loading = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mlflow, torch; mlflow.set_tracking_uri('sqlite:///"
            + str(root / "mlruns" / "mlflow.db")
            + f"'); net = mlflow.pytorch.load_model('{model}')"
            + "; print(tuple(net(torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)).shape))",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loading.stdout.strip().splitlines()[-1] == "(5, 304)"  # P1 | P2 | P3: 16 + 32 + 256
    # torch's requirement carries no local build tag (+cu130), so this environment's torch matches it silently
    assert "mismatches between the model's dependencies" not in loading.stderr, loading.stderr[-2000:]


def project_processes(root: Path) -> dict[int, str]:
    """PID -> command line of every process working in `root` (Linux)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cwd").resolve() == root.resolve():
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="reads process working directories from /proc")
def test_changing_a_guidance_param_reruns_only_the_g_simclr_arm_even_after_a_kill(project):
    """Guidance is the one difference between the arms: SimCLR, the controls and the supervised reference stay.
    The first scheduler is refused a twin, then SIGKILLed mid-pretraining: no stage of it survives it, and the
    re-run rebuilds exactly what the change needs -- even when the kill caught DVC rewriting its stage-lock file
    (it happened in CI: an empty `.dvc/tmp/rwlock`, which fails every later `dvc` command unless the re-run clears
    it; made certain here by emptying the file)."""
    root, env = project
    params = dict(TINY_PARAMS, seeds=SEEDS, guidance={**TINY_PARAMS["guidance"], "false_negatives": "cancel"})
    write_params(root / "params.yaml", params)
    first = subprocess.Popen(
        ["gsimclr", "repro"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    training = lambda: any("pretrain --method gsimclr" in cmd for cmd in project_processes(root).values())  # noqa: E731
    assert wait_until(training, 300), project_processes(root)
    twin = subprocess.run(["gsimclr", "repro"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert twin.returncode == 2 and twin.stderr.startswith(
        f"error: another study is running in this project: PID {first.pid}"
    ), twin.stderr
    assert "Traceback" not in twin.stderr and len(twin.stderr.strip().splitlines()) == 1
    first.kill()
    first.wait()
    assert wait_until(lambda: not project_processes(root), 30), project_processes(root)
    (root / ".dvc" / "tmp" / "rwlock").write_text("")
    output = sh(["gsimclr", "repro"], root, env)
    assert "note: removed .dvc/tmp/rwlock" in output
    assert ran(output) == per_seed("pretrain_gsimclr", "evaluate@gsimclr") | {"prepare", "compare"}


def test_exp_run_with_set_param_and_metrics_show(project):
    root, env = project
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-qm", "baseline"], root, env)
    # The t-SNE figure's sample size: `cluster` re-runs, its pseudo labels come out the same, so nothing it feeds does.
    output = sh(["dvc", "exp", "run", "-S", "cluster.tsne_points=50"], root, env)
    assert ran(output) == per_seed("cluster") | {"prepare", "compare"}
    shown = sh(["dvc", "metrics", "show"], root, env)
    assert "linear_P1/test_acc" in shown and "nmi" in shown and "gsimclr_minus_simclr/P3/test_acc/mean" in shown
    pooled = sh(["dvc", "exp", "show", "--json"], root, env)
    assert "results/metrics.json" in pooled and "gsimclr_minus_simclr/P3/test_acc/ci95" in pooled
    # The documented headline view (docs/mlflow-dvc.md), run as written: the headline in at most 30 columns.
    docs = (REPO / "docs" / "mlflow-dvc.md").read_text()
    command = docs.split("<!-- exp-show -->\n```bash\n", 1)[1].split("\n", 1)[0]
    header = sh(["bash", "-c", command], root, env).splitlines()[0]
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    assert len(columns) <= 30 and "gsimclr_minus_simclr/P3/test_acc/mean" in columns, columns
    assert {"simclr/P3/test_acc/mean", "random_init/P3/test_acc/mean", "supervised/test_acc/mean"} <= set(columns)


def test_a_study_file_runs_as_a_named_experiment_and_the_same_command_resumes_it(project, tmp_path):
    """`gsimclr study`: the study's params applied by `dvc exp run ... prepare`, the stages run by `gsimclr repro`,
    the finished experiment saved under its name; the same command again finds the params applied and nothing to
    do. The study keeps seed 0 only (the cheapest change that re-runs a stage: `compare` pools fewer seeds)."""
    root, env = project
    applied = yaml.safe_load((root / "params.yaml").read_text())
    study = write_params(tmp_path / "seed-0.yaml", dict(applied, seeds=[0]))
    output = sh(["gsimclr", "study", str(study), "--jobs", "2"], root, env)
    assert output.startswith("dvc exp run --name seed-0 -S ") and "whole seeds first" in output
    assert ran(output) == {"prepare", "compare"}
    assert yaml.safe_load((root / "params.yaml").read_text()) == dict(applied, seeds=[0])
    experiments = json.loads(sh(["dvc", "exp", "show", "--json"], root, env))
    saved = [exp for baseline in experiments for exp in baseline.get("experiments") or [] if exp["name"] == "seed-0"]
    assert len(saved) == 1
    again = sh(["gsimclr", "study", str(study), "--jobs", "2"], root, env)
    assert not again.startswith("dvc exp run") and ran(again) == {"prepare"}  # which always runs, and changes nothing


def test_artifacts_go_to_a_dvc_remote_and_come_back(project, tmp_path):
    """`dvc push` to a local-directory remote, lose the cache and the models, `dvc pull` restores them."""
    root, env = project
    sh(["dvc", "remote", "add", "--local", "-d", "store", str(tmp_path / "remote")], root, env)
    sh(["dvc", "push"], root, env)
    model = root / "artifacts" / "seed0" / "pretrain_gsimclr.pt"
    before = model.read_bytes()
    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(root / "artifacts")
    sh(["dvc", "pull"], root, env)
    assert model.read_bytes() == before
    status = sh(["dvc", "status"], root, env)
    assert status.split() == ["prepare:", "always", "changed"], status  # nothing else to re-run
