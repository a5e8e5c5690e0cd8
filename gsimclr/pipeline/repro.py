"""`dvc repro`, several stages at a time.

DVC runs a pipeline's stages one after another; its documentation's answer for independent branches is to
"launch dvc repro multiple times manually" (command reference, *Parallel stage execution*). A study has
many such branches (seeds, the two arms, the controls, the supervised reference), so on a machine with
idle cores they wait for each other, and each stage's process start-up (imports, the MLflow store) is
paid in series. This walks DVC's own stage graph and runs each stage as
`dvc --wait-for-lock repro --single-item STAGE` as soon as every stage it depends on has finished, at most
`jobs` at once, each with `threads` threads: DVC decides as always whether the stage changed, writes
`dvc.lock` under its repository lock (the flag queues the moments two stages write at once) and caches
the outputs, so the result is what one `dvc repro` makes. Whole seeds finish first, so a study stopped
after hours still holds complete seeds that `compare` can report.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import networkx as nx

from gsimclr.system.errors import UserError

Graph = dict[str, set[str]]
"""Stage name -> the names of the stages it depends on (directly)."""


SEED_OPTION = re.compile(r"--seed[= ](\d+)")
"""How a seeded stage's command names its seed (`gsimclr --seed N STAGE`, as dvc.yaml writes every one)."""


@dataclass(frozen=True)
class Pipeline:
    """A DVC pipeline's stages: what each depends on, and the seed of each stage that runs for one seed
    (`prepare` and `compare` have none)."""

    needs: Graph
    seeds: Mapping[str, int]

    def run_order(self) -> list[str]:
        """Every stage in the order ready stages start: the lowest seed first, so a later seed only fills a
        core its predecessors leave idle and an interrupted study keeps its finished seeds; within a seed, the
        stages with the longest chain of stages waiting on them first, so the seed's last minutes are not
        one stage running alone. Stages without a seed sort before every seed (dependencies still gate them:
        `compare` waits for all)."""
        stages = nx.DiGraph(self.needs)  # an edge points from a stage to one it depends on
        chain: dict[str, int] = {}
        for name in nx.topological_sort(stages):  # every stage after the stages waiting on it
            chain[name] = 1 + max((chain[after] for after in stages.predecessors(name)), default=0)
        return sorted(self.needs, key=lambda name: (self.seeds.get(name, -1), -chain[name], name))


def stage_graph(root: Path, targets: Sequence[str] = ()) -> Pipeline:
    """The pipeline's stages (`dvc.yaml`, foreach entries expanded), what each depends on and its seed; with
    `targets`, only those stages and everything upstream of them. An unknown target is a `UserError`."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            graph = repo.index.graph  # an edge points from a stage to a stage it depends on
            names = {stage: stage.addressing for stage in graph.nodes}
            full: Graph = {names[stage]: {names[dep] for dep in graph.successors(stage)} for stage in graph.nodes}
            commands = {names[stage]: str(stage.cmd or "") for stage in graph.nodes}
    except DvcException as exc:
        raise UserError(f"cannot read the DVC pipeline at {root}: {exc}") from None
    seeds = {name: int(found.group(1)) for name, cmd in commands.items() if (found := SEED_OPTION.search(cmd))}
    if not targets:
        return Pipeline(full, seeds)
    unknown = sorted(set(targets) - set(full))
    if unknown:
        raise UserError(f"no stage named {', '.join(unknown)} in dvc.yaml (`dvc stage list` names them)")
    wanted = set(targets) | set().union(*(nx.descendants(nx.DiGraph(full), target) for target in targets))
    return Pipeline({name: deps & wanted for name, deps in full.items() if name in wanted}, seeds)


@dataclass(frozen=True)
class Outcome:
    """How one stage's `dvc repro --single-item` ended."""

    stage: str
    returncode: int
    seconds: float
    log: Path

    @property
    def ran(self) -> bool:
        """Whether DVC ran the stage's command (else its dependencies had not changed)."""
        return f"Running stage '{self.stage}'" in self.log.read_text(errors="replace")

    @property
    def reason(self) -> str:
        """Why a failed stage failed, in one line: the stage's own `error:` line where it printed one, else DVC's
        cause (`dvc_reason`)."""
        lines = self.log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
        return next((line.removeprefix("error: ") for line in lines if line.startswith("error: ")), dvc_reason(lines))


BLOCKED = re.compile(r"'(?P<path>[^']+)' is busy, it is being blocked by:")
HOLDER = re.compile(r"^\s*\(PID (?P<pid>\d+)\): (?P<command>.+)$")


def dvc_reason(lines: Sequence[str]) -> str:
    """DVC's cause in one line: its `ERROR:` line -- where an output is busy, with the process that holds it and
    what to do, never the advice to delete the lock a live process holds -- else its last line."""
    error = next((line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: ")), None)
    if error is None:
        return lines[-1]
    busy = BLOCKED.search(error)
    if busy is None:
        return error
    holders = [found for line in lines if (found := HOLDER.match(line))]
    who = ", ".join(f"PID {h['pid']} (`{h['command'].strip()}`)" for h in holders) or "another DVC process"
    return (
        f"{busy['path']} is in use by {who}; wait for it to finish or stop it, then run this again "
        "(its lock is live: do not delete it)"
    )


def stage_command(stage: str) -> list[str]:
    """The DVC command that brings one stage up to date (and only that stage)."""
    return [sys.executable, "-m", "dvc", "--wait-for-lock", "repro", "--single-item", stage]


def supervised(command: list[str]) -> list[str]:
    """`command` under a supervisor that ends it, and every process it starts, when this scheduler ends
    (`gsimclr.pipeline.supervisor`)."""
    return [sys.executable, "-m", "gsimclr.pipeline.supervisor", str(os.getpid()), *command]


def run_graph(
    pipeline: Pipeline,
    jobs: int,
    threads: int,
    logs: Path,
    on_done: Callable[[Outcome], None],
    root: Path = Path("."),
    command: Callable[[str], list[str]] = stage_command,
    on_running: Callable[[Sequence[str]], None] = lambda stages: None,
) -> list[Outcome]:
    """Run every stage of `pipeline` once all its dependencies have succeeded, `jobs` at a time, in its
    `run_order`. After a failure
    no new stage starts; those running finish (their outputs stay valid). Ctrl-C or SIGTERM stops the running
    stages, DVC and the stage it runs alike (each keeps its checkpoint). Returns every finished stage's outcome,
    in the order they ended; `on_running` hears the stages running whenever they change."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    graph = pipeline.needs
    pending = pipeline.run_order()
    running: dict[str, tuple[subprocess.Popen, float, Path]] = {}
    done: list[Outcome] = []
    succeeded: set[str] = set()
    failed = False
    try:
        while pending or running:
            ready = [name for name in pending if graph[name] <= succeeded]
            while not failed and ready and len(running) < jobs:
                name = ready.pop(0)
                pending.remove(name)
                log = logs / f"{name}.log"
                with log.open("w") as handle:  # a session of its own, ended with the scheduler however it ends
                    process = subprocess.Popen(
                        supervised(command(name)),
                        cwd=root,
                        env=env,
                        stdout=handle,
                        stderr=handle,
                        start_new_session=True,
                    )
                running[name] = (process, time.monotonic(), log)
                on_running(list(running))
            if not running:
                break  # a failure left stages that can no longer start
            time.sleep(0.2)
            for name, (process, started, log) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                on_running(list(running))
                outcome = Outcome(name, process.returncode, time.monotonic() - started, log)
                done.append(outcome)
                if outcome.returncode == 0:
                    succeeded.add(name)
                else:
                    failed = True
                on_done(outcome)
    finally:  # interrupted (Ctrl-C, SIGTERM): each running stage is terminated and keeps its checkpoint
        for process, _, _ in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process, _, _ in running.values():
            process.wait()
    return done


def default_jobs(cores: Optional[int] = None) -> int:
    """Two stages at a time where there are two cores or more: a study's stages are small networks, for
    which two one-thread processes get more done than one two-thread process (benchmarks/repro.py)."""
    cores = cores or os.cpu_count() or 1
    return 2 if cores >= 2 else 1
