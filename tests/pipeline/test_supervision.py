"""Supervision and concurrency of `gsimclr repro`: its stages never outlive it (SIGKILL included), a second study in
the same project is refused with a line naming the running one, and DVC's refusals keep their cause."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import alive, wait_until
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.pipeline.repro import Outcome
from gsimclr.pipeline.study_lock import one_study_at_a_time
from gsimclr.system.errors import UserError

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")


SCHEDULER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from gsimclr.pipeline.repro import Pipeline, run_graph

    folder = Path(sys.argv[1])

    def command(name):  # a stand-in for `dvc repro` that starts a long stage of its own, as DVC does
        stage = (
            "import os, subprocess, sys; p = subprocess.Popen(['sleep', '120']); "
            f"open({str(folder)!r} + '/' + {name!r}, 'w').write(f'{{os.getpid()}} {{p.pid}}'); p.wait()"
        )
        return [sys.executable, "-c", stage]

    run_graph(Pipeline({"a": set(), "b": set()}, {}), 2, 1, folder / "logs", lambda outcome: None, command=command)
    """
)


def children(pid: int) -> list[int]:
    """The PIDs whose parent is `pid` (Linux)."""
    stats = (Path(entry, "stat") for entry in Path("/proc").iterdir() if entry.name.isdigit())
    found = []
    for stat in stats:
        try:
            if int(stat.read_text().split(")")[-1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def test_stages_end_when_the_scheduler_is_killed_and_leave_no_zombie(tmp_path):
    """SIGKILL gives the scheduler no cleanup: only the supervisors can act. Once they have exited, nothing of the
    stages is left, not even a zombie -- DVC counts a zombie that held an output's lock as a live holder and would
    refuse the re-run (psutil.pid_exists)."""
    scheduler = subprocess.Popen([sys.executable, "-c", SCHEDULER, str(tmp_path)])
    stages = [tmp_path / "a", tmp_path / "b"]
    assert wait_until(lambda: all(p.exists() and p.read_text() for p in stages), 60)
    tree = [int(pid) for p in stages for pid in p.read_text().split()]  # each stage and the process it started
    supervisors = children(scheduler.pid)
    assert len(supervisors) == 2 and all(alive(pid) for pid in tree)
    scheduler.send_signal(signal.SIGKILL)
    scheduler.wait()
    assert wait_until(lambda: not any(alive(pid) for pid in supervisors), 10), "a supervisor outlived its stage"
    assert not [pid for pid in tree if Path(f"/proc/{pid}").exists()], "a stage outlived its scheduler, or its zombie"


def test_a_second_study_in_the_project_is_refused_with_the_running_one_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from gsimclr.pipeline.study_lock import one_study_at_a_time\n"
            "with one_study_at_a_time() as running:\n    running(['pretrain_gsimclr@0']); print('held', flush=True)\n"
            "    time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError) as refused, one_study_at_a_time():
            pass
        message = str(refused.value)
        assert f"PID {holder.pid}" in message and "running: pretrain_gsimclr@0" in message
        assert "wait for it to finish" in message and "delete" not in message
        result = CliRunner().invoke(app, ["repro"])  # the command line: one line, exit 2, nothing started
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert result.output.startswith(f"error: another study is running in this project: PID {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    with one_study_at_a_time() as running:  # a killed holder leaves no stale lock behind
        running(["x"])
        assert json.loads((tmp_path / ".gsimclr" / "study.lock").read_text())["running"] == ["x"]


@pytest.mark.parametrize("torn", ["", '{"read": {"data": [{"pid": 1', "\udcff"])
def test_taking_the_study_lock_removes_dvc_s_torn_stage_lock_file_and_says_so(tmp_path, capsys, torn):
    """What a DVC process killed mid-write leaves (empty, cut short, garbage) would fail every later `dvc` command
    (treeverse/dvc#7615): the next study removes it, with one line on stderr."""
    rwlock = tmp_path / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True)
    rwlock.write_bytes(torn.encode("utf-8", "surrogateescape"))
    with one_study_at_a_time(tmp_path):
        assert not rwlock.exists()
    assert capsys.readouterr().err == (
        "note: removed .dvc/tmp/rwlock, DVC's stage-lock file, torn by a run that was killed (treeverse/dvc#7615)\n"
    )


def test_a_readable_stage_lock_file_is_left_to_dvc(tmp_path, capsys):
    rwlock = tmp_path / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True)
    entries = '{"write": {"data": {"pid": 1, "cmd": "dvc repro"}}, "read": {}}'
    rwlock.write_text(entries)
    with one_study_at_a_time(tmp_path):
        assert rwlock.read_text() == entries
    assert capsys.readouterr().err == ""


def test_dvc_s_busy_output_is_relayed_with_its_cause_and_without_the_advice_to_delete_a_live_lock(tmp_path):
    """The real DVC message: a second `dvc repro` of a stage while a first one runs it."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    run = lambda *args, **kw: subprocess.run(args, cwd=tmp_path, env=env, check=True, capture_output=True, **kw)  # noqa: E731
    run("git", "init", "-q")
    run(sys.executable, "-m", "dvc", "init", "-q")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  slow:\n    cmd: sleep 30 && echo done > out.txt\n    outs:\n      - out.txt\n"
    )
    first = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=tmp_path, env=env, start_new_session=True)
    try:
        assert wait_until(lambda: (tmp_path / ".dvc" / "tmp" / "rwlock").exists(), 60)
        log = tmp_path / "slow.log"
        with log.open("w") as handle:
            second = subprocess.run(
                [sys.executable, "-m", "dvc", "repro", "--single-item", "slow"],
                cwd=tmp_path,
                env=env,
                stdout=handle,
                stderr=handle,
            )
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait()
    assert second.returncode != 0
    assert "manually remove" in log.read_text()  # what DVC itself advises
    reason = Outcome("slow", second.returncode, 1.0, log).reason
    assert reason.startswith(f"{tmp_path / 'out.txt'} is in use by PID {first.pid} (`"), reason
    assert "wait for it to finish or stop it" in reason and "manually remove" not in reason
