"""The stages' flat metric records: what a metrics file holds and how an old or foreign one is refused."""

import json

import pytest

from gsimclr.outputs.metrics import ClusterMetrics, PretrainMetrics
from gsimclr.system.errors import UserError


def test_a_record_leaves_out_what_does_not_apply_and_reads_back_equal(tmp_path):
    metrics = PretrainMetrics(loss=2.0, epochs=3, processes=1, knn_val_acc=0.5)
    assert metrics.to_json() == {"loss": 2.0, "epochs": 3, "processes": 1, "knn_val_acc": 0.5}
    path = tmp_path / "pretrain.json"
    path.write_text(json.dumps(metrics.to_json() | {"a_key_from_a_newer_gsimclr": 1.0}))
    assert PretrainMetrics.read(path, "pretrain metrics") == metrics


def test_a_file_without_a_required_key_names_it_and_the_remedy(tmp_path):
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps({"inertia": 1.0, "clusters": 4}))
    required = "guided_distinct_pseudo_labels, guided_same_pseudo_pairs, random_distinct_pseudo_labels, " + (
        "random_same_pseudo_pairs, size_max, size_mean, size_min"
    )
    with pytest.raises(UserError, match=rf"^cluster metrics lacks {required} \(written by an older gsimclr"):
        ClusterMetrics.read(path, "cluster metrics")
