"""`Layout` names every file a stage writes, and `dvc.yaml` declares exactly those files."""

import itertools

import pytest
import yaml
from conftest import REPO

from gsimclr.pipeline.layout import Layout
from gsimclr.settings.names import CONTROLS, EVAL_METHODS, METHODS


def declared_outputs(seed: int = 0) -> set[str]:
    """Every outs/metrics/plots path of dvc.yaml's stages, expanded for one seed and every matrix method."""
    paths = set()
    for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values():
        body = stage.get("do", stage)
        methods = stage.get("matrix", {}).get("method", [None])
        for kind in ("outs", "metrics", "plots"):
            for entry, method in itertools.product(body.get(kind) or [], methods):
                path = entry if isinstance(entry, str) else next(iter(entry))
                path = path.replace("${item.seed}", str(seed)).replace("${item}", str(seed))
                paths.add(path.replace("${item.method}", method) if method else path)
    return paths


def layout_outputs(seed: int = 0) -> set[str]:
    layout = Layout().for_seed(seed)
    files = [
        layout.prepared,
        layout.autoencoder,
        layout.pseudo_labels,
        layout.metrics("autoencoder"),
        layout.metrics("cluster"),
        layout.run_record("autoencoder"),
        layout.run_record("cluster"),
        layout.autoencoder_loss("csv"),
        layout.autoencoder_loss("png"),
        layout.cluster_figure("cluster_sizes"),
        layout.cluster_figure("cluster_tsne"),
        layout.results_md,
        layout.results_csv,
        layout.results_metrics,
        layout.result_figure("accuracy_by_seed"),
        layout.result_figure("pretrain_loss"),
    ]
    for method in METHODS:
        files += [layout.pretrained(method), layout.metrics("pretrain", method), layout.run_record("pretrain", method)]
        files += [layout.pretrain_loss(method, "csv"), layout.pretrain_loss(method, "png"), layout.pretrain_knn(method)]
    for method in EVAL_METHODS:
        files += [layout.metrics("evaluate", method), layout.run_record("evaluate", method)]
    return {str(path) for path in files}


def test_dvc_yaml_declares_exactly_the_files_layout_names():
    assert declared_outputs() == layout_outputs()


def test_per_seed_paths_need_a_seed():
    with pytest.raises(ValueError, match="for_seed"):
        Layout().pretrained("simclr")
    assert Layout().for_seed(3).pretrained("gsimclr").parts[:2] == ("artifacts", "seed3")


def test_training_files_of_every_classifier_are_distinct():
    layout = Layout().for_seed(0)
    files = [layout.classifier_training(m, c) for m in (*METHODS, *CONTROLS) for c in ("finetune",)]
    files += [layout.classifier_training("supervised", "supervised"), layout.autoencoder_training]
    files += [layout.pretrain_training(m) for m in METHODS]
    paths = [f.checkpoint for f in files] + [f.log for f in files]
    assert len(set(paths)) == len(paths) and all(p.parts[0] == "checkpoints" for p in paths)
