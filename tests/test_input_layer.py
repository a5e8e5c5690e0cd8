"""Every file the project reads goes through one input layer (`gsimclr.inputs`): non-UTF-8 bytes, repeated YAML
keys, FIFOs and other non-regular files, hidden folders and holes in a results table are one-line errors
(exit 2) or are ignored as not data — never a hang, a traceback or a silently dropped section."""

import csv
import os
import threading
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TINY_PARAMS, write_image_folder
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.config import DataConfig
from gsimclr.data import decode_dataset

runner = CliRunner()


def one_line_error(result, needle: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("error:") and needle in lines[0] and "Traceback" not in result.output, lines[0]


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
