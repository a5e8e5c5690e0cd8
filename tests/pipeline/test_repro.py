"""`gsimclr repro`'s scheduler: stages start only after what they depend on, never more than `jobs` at once,
a failure starts nothing new, whole seeds finish first, and within a seed the chain that decides its end starts
first. The real pipeline run through it is in test_pipeline_dvc.py."""

import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, alive

from gsimclr.pipeline.repro import Graph, Outcome, Pipeline, default_jobs, run_graph, stage_graph
from gsimclr.system.errors import UserError

STUDY: Graph = {
    "prepare": set(),
    "autoencoder": {"prepare"},
    "cluster": {"autoencoder"},
    "pretrain_gsimclr": {"cluster"},
    "pretrain_simclr": {"prepare"},
    "controls": {"prepare"},
    "compare": {"pretrain_gsimclr", "pretrain_simclr", "controls"},
}


def seeded(seeds: list[int]) -> Pipeline:
    """STUDY's seeded stages once per seed (`autoencoder@1`, ...) around one `prepare` and one `compare`."""
    per_seed = [name for name in STUDY if name not in ("prepare", "compare")]
    needs: Graph = {"prepare": set(), "compare": set()}
    for seed in seeds:
        for name in per_seed:
            needs[f"{name}@{seed}"] = {dep if dep == "prepare" else f"{dep}@{seed}" for dep in STUDY[name]}
            needs["compare"].add(f"{name}@{seed}")
    return Pipeline(needs, {name: int(name.split("@")[1]) for name in needs if "@" in name})


def fake_stage(journal: Path, failing: str = ""):
    """A stage command that notes its start and end (and its thread setting) in `journal`, sleeping between."""

    def command(name: str) -> list[str]:
        code = (
            "import os, sys, time\n"
            f"journal = open({str(journal)!r}, 'a')\n"
            f"journal.write(f'start {name} {{os.environ[\"OMP_NUM_THREADS\"]}}\\n'); journal.flush()\n"
            "time.sleep(0.3)\n"
            f"journal.write('end {name}\\n'); journal.flush()\n"
            f"sys.exit(1 if {name!r} == {failing!r} else 0)\n"
        )
        return [sys.executable, "-c", code]

    return command


def events(journal: Path) -> list[tuple[str, str]]:
    return [(line.split()[0], line.split()[1]) for line in journal.read_text().splitlines()]


def test_stages_start_after_their_dependencies_and_at_most_jobs_at_once(tmp_path):
    journal = tmp_path / "journal"
    outcomes = run_graph(
        Pipeline(STUDY, {}), 2, 3, tmp_path / "logs", lambda outcome: None, command=fake_stage(journal)
    )
    assert sorted(outcome.stage for outcome in outcomes) == sorted(STUDY)
    assert all(outcome.returncode == 0 for outcome in outcomes)
    ended: set[str] = set()
    running: set[str] = set()
    most = 0
    for event, name in events(journal):
        if event == "start":
            assert STUDY[name] <= ended, f"{name} started before {STUDY[name] - ended} ended"
            running.add(name)
            most = max(most, len(running))
        else:
            running.remove(name)
            ended.add(name)
    assert most == 2
    assert {line.split()[2] for line in journal.read_text().splitlines() if line.startswith("start")} == {"3"}


def test_after_a_failure_nothing_new_starts_and_the_reason_is_the_stage_s_own_line(tmp_path):
    journal = tmp_path / "journal"
    outcomes = run_graph(
        Pipeline(STUDY, {}), 1, 1, tmp_path / "logs", lambda outcome: None, command=fake_stage(journal, "cluster")
    )
    started = [name for event, name in events(journal) if event == "start"]
    assert started == ["prepare", "autoencoder", "cluster"]  # the longest chain first, then the failure stops it
    failed = [outcome for outcome in outcomes if outcome.returncode]
    assert [outcome.stage for outcome in failed] == ["cluster"]
    log = tmp_path / "stage.log"
    log.write_text("Running stage 'x':\nerror: data.root does not exist\nERROR: failed to reproduce 'x'\n")
    assert Outcome("x", 2, 1.0, log).reason == "data.root does not exist"
    assert Outcome("x", 2, 1.0, log).ran


def test_the_longest_chain_comes_first():
    order = Pipeline(STUDY, {}).run_order()
    assert order[:3] == ["prepare", "autoencoder", "cluster"]
    assert set(order[3:6]) == {"pretrain_gsimclr", "pretrain_simclr", "controls"} and order[-1] == "compare"


def test_whole_seeds_finish_first_and_a_later_seed_only_fills_an_idle_core(tmp_path):
    """Seeds listed out of order and stage names that sort the other way: the seed decides, not the name or
    the chain (seed 1's autoencoder heads a longer chain than seed 0's last stages)."""
    pipeline = seeded([1, 0])
    order = pipeline.run_order()
    assert order[:2] == ["prepare", "compare"]  # no seed: first, but `compare` still waits for every seed
    assert [pipeline.seeds[name] for name in order[2:]] == [0] * 5 + [1] * 5
    journal = tmp_path / "journal"

    def collected(outcome: Outcome) -> None:  # the scheduler's own view: a stage's "end" line precedes its exit
        with journal.open("a") as handle:
            handle.write(f"done {outcome.stage}\n")

    def launched(name: str) -> list[str]:  # likewise: a stage's own "start" line can follow a later collection
        with journal.open("a") as handle:
            handle.write(f"launch {name}\n")
        return fake_stage(journal)(name)

    run_graph(pipeline, 2, 1, tmp_path / "logs", collected, command=launched)
    seed_0 = {name for name in pipeline.needs if pipeline.seeds.get(name) == 0}
    running: set[str] = set()
    ended: set[str] = set()
    filled = False  # a seed-1 stage ran beside seed 0's last stage, on the core seed 0 left idle
    for event, name in events(journal):
        if event in ("start", "end"):
            continue
        if event == "done":
            running.remove(name)
            ended.add(name)
            continue
        if pipeline.seeds.get(name) == 1:
            waiting = {stage for stage in seed_0 - ended - running if pipeline.needs[stage] <= ended}
            assert not waiting, f"{name} started while seed 0's {waiting} could have"
            filled |= bool(seed_0 & running)
        running.add(name)
    assert filled


def test_two_jobs_where_there_are_two_cores():
    assert [default_jobs(cores) for cores in (1, 2, 16)] == [1, 2, 2]


def test_the_repository_s_pipeline_its_seeds_and_a_target_s_upstream(monkeypatch):
    pipeline = stage_graph(REPO)
    assert pipeline.needs["cluster@0"] == {"prepare", "autoencoder@0"}
    assert pipeline.needs["compare"] >= {"evaluate@gsimclr-0", "supervised@0", "controls@pixels-0"}
    assert {name: pipeline.seeds.get(name) for name in ("prepare", "evaluate@simclr-1", "supervised@2", "compare")} == {
        "prepare": None,
        "evaluate@simclr-1": 1,
        "supervised@2": 2,
        "compare": None,
    }
    assert set(pipeline.seeds) == set(pipeline.needs) - {"prepare", "compare"}
    assert stage_graph(REPO, ["pretrain_gsimclr@1"]).needs.keys() == {
        "prepare",
        "autoencoder@1",
        "cluster@1",
        "pretrain_gsimclr@1",
    }
    with pytest.raises(UserError, match="no stage named nope"):
        stage_graph(REPO, ["nope"])


def test_an_unknown_stage_is_one_line_and_exit_2(monkeypatch):
    from typer.testing import CliRunner

    from gsimclr.cli import app

    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["repro", "autoencoder@9"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: no stage named autoencoder@9 in dvc.yaml (`dvc stage list` names them)"
    ]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_an_interruption_stops_the_running_stages_and_what_they_started(tmp_path):
    """DVC runs the stage as its own child: terminating DVC alone would leave the stage training."""
    pids = tmp_path / "pids"

    def command(name: str) -> list[str]:
        if name == "quick":
            return [sys.executable, "-c", "pass"]
        stage = f"import subprocess; p = subprocess.Popen(['sleep', '60']); open({str(pids)!r}, 'w').write(str(p.pid))"
        return [sys.executable, "-c", stage + "; p.wait()"]

    def interrupt(outcome: Outcome) -> None:
        while not pids.exists() or not pids.read_text():
            time.sleep(0.05)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_graph(Pipeline({"quick": set(), "slow": set()}, {}), 2, 1, tmp_path / "logs", interrupt, command=command)
    grandchild = int(pids.read_text())
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)
