"""`gsimclr label-quality`: the printed table is the scores of the encoder's own embeddings of the split (as
`gsimclr embed` writes them) against the split's classes; user mistakes are one `error:` line, exit 2."""

import numpy as np
import pytest
from conftest import TINY_PARAMS, write_params
from typer.testing import CliRunner

from gsimclr.cli import app
from gsimclr.data.prepared import dataset_key, read_meta, read_prepared
from gsimclr.evaluation.label_quality import batch_suspect_scores, cluster_scores, neighbour_agreement
from gsimclr.pipeline.layout import Layout
from gsimclr.settings.loading import load_params

runner = CliRunner()
CHECKPOINT = "artifacts/seed0/pretrain_simclr.pt"


def gsimclr(*args: str):
    return runner.invoke(app, ["--device", "cpu", *args])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("label-quality")
    write_params(root / "params.yaml", TINY_PARAMS)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for command in (["prepare"], ["pretrain", "--method", "simclr"]):
            result = gsimclr(*command)
            assert result.exit_code == 0, result.output
    return root


def test_the_table_scores_the_embeddings_embed_writes(project, monkeypatch):
    monkeypatch.chdir(project)
    result = gsimclr(
        "label-quality",
        "--model",
        CHECKPOINT,
        "--k",
        "10",
        "--top",
        "1",
        "--top",
        "5",
        "--suspects",
        "2",
        "--batch",
        "8",
        "--tap",
        "P3",
        "--output",
        "q.md",
    )
    assert result.exit_code == 0, result.output
    embedded = gsimclr("embed", "--split", "train", "--model", CHECKPOINT, "--out", "emb")
    assert embedded.exit_code == 0, embedded.output
    features = np.load(project / "emb" / "P3.npy")
    folder = Layout().prepared_data(dataset_key(load_params(project / "params.yaml").data))
    true = read_prepared(folder, read_meta(folder).source).train_y.numpy()
    near = neighbour_agreement(features, true, [1, 5])
    suspects = batch_suspect_scores(features, true, 8, [2], seed=0)[2]
    clusters = cluster_scores(features, true, 10, seed=0)
    (row,) = [line for line in result.output.splitlines() if line.startswith("| P3 |")]
    expected = (
        f"| P3 | {near[1]:.3f} | {near[5]:.3f} | {suspects['precision']:.3f} / {suspects['recall']:.3f} | "
        + " / ".join(f"{clusters[key]:.3f}" for key in ("nmi", "purity", "pair_precision", "pair_recall"))
        + " |"
    )
    assert row == expected
    assert row in (project / "q.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--model is required"),
        (["--model", CHECKPOINT, "--tap", "P9"], "--tap P9: not a representation"),
        (["--model", CHECKPOINT, "--top", "100000"], "--top and --k must be between 1 and"),
        (["--model", CHECKPOINT, "--k", "0"], "--top and --k must be between 1 and"),
        (["--model", CHECKPOINT, "--suspects", "16"], "--suspects must be between 1 and --batch - 1"),
        (["--model", CHECKPOINT, "--batch", "100000"], "--batch (100000) at most the"),
        (["--model", "missing.pt"], "missing.pt"),
    ],
)
def test_bad_input_is_one_error_line(project, monkeypatch, args, message):
    monkeypatch.chdir(project)
    result = gsimclr("label-quality", *args, "--output", "bad.md")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output
    assert not (project / "bad.md").exists()
