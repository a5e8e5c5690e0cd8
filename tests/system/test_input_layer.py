"""Hostile input by class. Every file the project reads goes through one input layer (`gsimclr.system.inputs`):
non-UTF-8 bytes, repeated YAML keys, FIFOs and other non-regular files, hidden folders and holes in a results table
are one-line errors (exit 2) or are ignored as not data — never a hang, a traceback or a silently dropped
section. Ranges are checked at config load (seeds, devices, pseudo-label ids); SIGTERM is Ctrl-C; outputs
honour the umask."""

import csv
import errno
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import typer
import yaml
from conftest import REPO, TINY_PARAMS, write_image_folder, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.cli.errors import reported_errors
from gsimclr.data.loaders import decode_dataset
from gsimclr.method.pseudo_labels import read_pseudo_labels
from gsimclr.pipeline.layout import Layout
from gsimclr.settings.config import DataConfig
from gsimclr.system.errors import UserError
from gsimclr.system.storage import FILE_MODE, save_torch, write_json

runner = CliRunner()


def one_line_error(result, needle: str) -> None:
    """Exit 2, one `error:` line holding `needle` (beside a stage's progress lines), no traceback."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert needle in errors[0] and "Traceback" not in result.output, errors[0]


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def within_seconds(seconds: float, call):
    """`call()`'s result, failing the test (instead of hanging it) when it takes longer than `seconds`."""
    box: list = []
    worker = threading.Thread(target=lambda: box.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert box, f"still running after {seconds} s (a reader blocked)"
    return box[0]


PARAMS_TEXT = yaml.safe_dump(TINY_PARAMS, sort_keys=False)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (PARAMS_TEXT + "pretrain: {epochs: 3}\n", "duplicate key 'pretrain'"),
        (PARAMS_TEXT.replace("cluster:", "cluster:\n  k: 4\n  k: 8", 1), "duplicate key 'k'"),
        (b"seeds: [0]\ndata: {name: digits}\n" + b"# caf\xe9\n", "not UTF-8"),
        (None, "not a regular file"),
    ],
    ids=["repeated-section", "repeated-key", "latin-1", "fifo"],
)
@pytest.mark.parametrize("reader", ["params", "study"])
def test_a_bad_params_or_study_file_is_one_line(tmp_path, monkeypatch, content, needle, reader):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "file.yaml"
    if content is None:
        fifo(path)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    if reader == "params":
        args = ["--params", str(path), "--device", "cpu", "cluster"]
    else:
        (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
        args = ["study", str(path), "--dry-run"]
    one_line_error(within_seconds(10, lambda: runner.invoke(app, args)), needle)


def test_a_fifo_named_like_an_image_is_skipped_and_hidden_folders_are_not_classes(tmp_path, capsys):
    root = write_image_folder(tmp_path / "imgs", classes=("cat", "dog"))
    fifo(root / "train" / "cat" / "blocked.png")
    (root / "train" / ".ipynb_checkpoints").mkdir()
    write_image_folder(tmp_path / "hidden", classes=(".ipynb_checkpoints",))
    for split in ("train", "test"):
        (root / split / ".cache").mkdir()
        (root / split / "dog" / ".thumbs").mkdir()
        (root / split / "dog" / ".thumbs" / "x.png").write_bytes((root / split / "dog" / "0.jpg").read_bytes())
    data = within_seconds(10, lambda: decode_dataset(DataConfig(name="imagefolder", root=str(root), image_size=8)))
    assert data.classes == ["cat", "dog"] and len(data.train_y) == 8 and len(data.test_y) == 8
    assert "skipped 1 unreadable image(s)" in capsys.readouterr().out


def test_a_newline_in_a_file_name_cannot_fake_an_error_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "imgs", classes=("cat", "dog"))
    (root / "train" / "cat" / "x\nerror: all data deleted.png").write_bytes(b"not an image")
    decode_dataset(DataConfig(name="imagefolder", root=str(root), image_size=8))
    out = capsys.readouterr().out
    assert not any(line.startswith("error:") for line in out.splitlines()) and "\\nerror: all data" in out


def test_a_class_folder_whose_name_is_not_utf8_is_printable(tmp_path):
    root = write_image_folder(tmp_path / "imgs", classes=("cat", "dog"))
    for split in ("train", "test"):
        os.rename(root / split / "dog", os.path.join(os.fsencode(root / split), b"d\xf6g"))
    data = decode_dataset(DataConfig(name="imagefolder", root=str(root), image_size=8))
    assert data.classes[0] == "cat" and data.classes[1].isprintable()
    data.classes[1].encode("utf-8")  # no surrogate escapes left to crash a plot or a table


def results_csv(path: Path, mutate) -> Path:
    rows = [
        {"table": "II", "metric": "accuracy", "method": m, "representation": "P3", "seed": s, "test_acc": 0.5 + s / 10}
        for m in ("simclr", "gsimclr")
        for s in (0, 1, 2)
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "paper"])
        writer.writeheader()
        writer.writerows(rows)
    path.write_bytes(mutate(path.read_bytes()))
    return path


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda text: text.replace(b"0.7", b"nan"), "not an accuracy"),
        (lambda text: text.replace(b"0.7", b""), "not a gsimclr results row"),
        (lambda text: text.replace(b",0.6,", b",", 1), "fewer cells"),
        (lambda text: text + b"\xff\xfe\n", "not UTF-8"),
    ],
    ids=["nan", "empty", "short-row", "latin-1"],
)
def test_a_results_table_with_a_hole_never_yields_a_verdict(tmp_path, mutate, needle):
    path = results_csv(tmp_path / "results.csv", mutate)
    result = runner.invoke(app, ["tabulate", f"a={path}", "-r", "P3"])
    one_line_error(result, needle)


def test_a_well_formed_table_still_tabulates(tmp_path):
    path = results_csv(tmp_path / "results.csv", lambda text: text)
    result = runner.invoke(app, ["tabulate", f"a={path}", "-r", "P3"])
    assert result.exit_code == 0 and "| a | P3 | 3 |" in result.output, result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--device", "meta"], "unknown device 'meta'"),
        (["--device", "xpu"], "unknown device 'xpu'"),
        (["--device", "cuda:x"], "unknown device 'cuda:x'"),
    ],
)
def test_devices_are_limited_to_what_the_code_runs_on(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", TINY_PARAMS)
    one_line_error(runner.invoke(app, ["--params", str(params), *args, "prepare"]), needle)


@pytest.mark.parametrize("seed", [2**32, 2**31])
def test_a_seed_beyond_what_numpy_and_scikit_learn_take_is_a_config_error(tmp_path, monkeypatch, seed):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", {**TINY_PARAMS, "seeds": [seed]})
    one_line_error(runner.invoke(app, ["--params", str(params), "--device", "cpu", "prepare"]), "seeds.0")


@pytest.mark.parametrize(("resumable", "how"), [(True, "resume from the last checkpoint"), (False, "no checkpoint")])
def test_sigterm_is_handled_like_ctrl_c(capsys, resumable, how):
    with pytest.raises(typer.Exit) as stopped, reported_errors(resumable):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
    assert stopped.value.exit_code == 143
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("terminated:") and how in lines[0]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_outputs_honour_the_umask(tmp_path):
    write_json(tmp_path / "metrics.json", {"a": 1})
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == FILE_MODE == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 1024 vs 960"), "disk is full"),
        (OSError(errno.ENOSPC, "No space left on device", "ckpt.pt"), "the disk is full (ckpt.pt)"),
        (PermissionError(errno.EACCES, "Permission denied", "mlruns"), "permission denied (mlruns)"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only"),
        (RuntimeError("(sqlite3.OperationalError) attempt to write a readonly database"), "store is read-only"),
    ],
)
def test_a_full_disk_or_a_forbidden_path_is_one_line_wherever_it_is_raised(tmp_path, monkeypatch, capsys, raised, said):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", TINY_PARAMS)
    assert runner.invoke(app, ["--params", str(params), "prepare"]).exit_code == 0
    before = {path: path.read_bytes() for path in (tmp_path / "prepared").rglob("*") if path.is_file()}

    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr("gsimclr.stages.autoencoder.save_torch", fail)
    one_line_error(runner.invoke(app, ["--params", str(params), "--device", "cpu", "autoencoder"]), said)
    assert before == {path: path.read_bytes() for path in (tmp_path / "prepared").rglob("*") if path.is_file()}


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", TINY_PARAMS)
    monkeypatch.setattr("gsimclr.stages.prepare.decode_dataset", lambda cfg: 1 / 0)
    result = runner.invoke(app, ["--params", str(params), "prepare"])
    assert isinstance(result.exception, ZeroDivisionError)


def test_an_empty_params_file_is_refused(tmp_path):
    (tmp_path / "params.yaml").write_text("# nothing yet\n")
    one_line_error(runner.invoke(app, ["--params", str(tmp_path / "params.yaml"), "prepare"]), "empty")


def test_a_truncated_checkpoint_suggests_restart_and_another_configuration_is_said_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", TINY_PARAMS)
    assert runner.invoke(app, ["--params", str(params), "prepare"]).exit_code == 0
    checkpoint = Layout().for_seed(0).autoencoder_training.checkpoint
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"PK\x03\x04 truncated")
    one_line_error(runner.invoke(app, ["--params", str(params), "--device", "cpu", "autoencoder"]), "--restart")
    save_torch({"kind": "gsimclr-resume", "config_hash": "another"}, checkpoint)
    result = runner.invoke(app, ["--params", str(params), "--device", "cpu", "autoencoder"])
    assert result.exit_code == 0 and result.output.count("for another configuration") == 1, result.output


def test_a_malformed_tracking_uri_is_one_line_and_hides_credentials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", TINY_PARAMS)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:secret@[::1:5000/")
    result = runner.invoke(app, ["--params", str(params), "--device", "cpu", "autoencoder"])
    one_line_error(result, "not a valid URI")
    assert "secret" not in result.output


def test_an_mlruns_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "params.yaml", TINY_PARAMS)
    (tmp_path / "mlruns").write_text("not a folder")
    one_line_error(runner.invoke(app, ["--params", str(params), "--device", "cpu", "autoencoder"]), "a file stands")
    assert (tmp_path / "mlruns").read_text() == "not a folder"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("0,1\n-1,0\n2,0\n", "line 3: index -1 is negative"),
        ("0,1\n1,0\n3,0\n", "line 4: index 3 is beyond the 3 training images (indices 0..2)"),
        ("0,1\n1,0\n1,2\n", "line 4: index 1 appears a second time"),
        ("0,1\n1,-4\n2,0\n", "line 3: cluster -4 is negative"),
        ("0,1\n1,999999999999\n2,0\n", "line 3: cluster 999999999999 is beyond one cluster per image (ids 0..2)"),
        ("0,1\n1,x\n2,0\n", "line 3: cluster 'x' is not an integer"),
        ("0,1\n1,1.5\n2,0\n", "line 3: cluster 1.5 is not an integer"),
        ("0,1\n2,0\n", "labels 2 images but the training split has 3: index 1 is missing"),
    ],
)
def test_a_bad_pseudo_label_table_names_the_row_and_the_value(tmp_path, rows, message):
    path = tmp_path / "pseudo_labels.csv"
    path.write_text("index,cluster\n" + rows)
    with pytest.raises(UserError) as refused:
        read_pseudo_labels(path, 3)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_shuffled_pseudo_label_table_is_read_in_image_order(tmp_path):
    path = tmp_path / "pseudo_labels.csv"
    path.write_text("index,cluster\n2,0\n0,2\n1,1\n")
    assert read_pseudo_labels(path, 3).tolist() == [2, 1, 0]


def test_a_pool_table_keys_each_image_by_its_path_and_another_pools_table_is_refused(tmp_path):
    path, pool = tmp_path / "pseudo_labels.csv", ("x/a.jpg", "b.png", "c d.jpg")
    path.write_text("index,path,cluster\n2,c d.jpg,0\n0,x/a.jpg,2\n1,b.png,1\n")
    assert read_pseudo_labels(path, 3, pool).tolist() == [2, 1, 0]
    with pytest.raises(UserError, match=r"line 3: 'x/a.jpg' is not image 0 of data.pool \('y/a.jpg'\)"):
        read_pseudo_labels(path, 3, ("y/a.jpg", "b.png", "c d.jpg"))
    path.write_text("index,cluster\n0,2\n1,1\n2,0\n")  # the table of a labelled training split
    with pytest.raises(UserError, match="expected a path column"):
        read_pseudo_labels(path, 3, pool)
