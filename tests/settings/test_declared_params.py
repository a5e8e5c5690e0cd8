"""Each stage reads exactly the params it declares (gsimclr/settings/declared.py, written into dvc.yaml by
tools/dvc_yaml.py), so a changed parameter re-runs every stage whose output it can change, and no other."""

import pytest
import yaml
from conftest import REPO

from gsimclr.settings.config import Params
from gsimclr.settings.declared import DECLARED, UndeclaredParamError, values, view
from tools.dvc_yaml import invocations


def test_every_declared_stage_is_in_dvc_yaml():
    """dvc.yaml's `params:` lists are written from DECLARED (tests/pipeline/test_dvc_yaml.py); this catches the
    reverse: a declaration no stage of dvc.yaml runs."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values()
    assert {run for stage in stages for run in invocations(stage)} == set(DECLARED)


@pytest.mark.parametrize(
    "name", ["params.yaml", *sorted(str(p.relative_to(REPO)) for p in (REPO / "pipelines").glob("*.yaml"))]
)
def test_every_declared_entry_is_in_each_parameter_set(name):
    """DVC refuses to run a stage whose `params:` names a key the file lacks (defaults do not count)."""
    raw = yaml.safe_load((REPO / name).read_text())
    for entries in DECLARED.values():
        for entry in entries:
            node = raw
            for part in entry.split("."):
                assert isinstance(node, dict) and part in node, f"{name} lacks {entry}"
                node = node[part]


def test_reading_an_undeclared_entry_raises_and_names_it():
    params = view(Params(), DECLARED[("evaluate", "supervised")])
    assert params.evaluate.supervised.epochs == Params().evaluate.supervised.epochs
    assert params.checkpoint_every == 1  # operational: readable everywhere
    with pytest.raises(UndeclaredParamError, match=r"params\.evaluate\.finetune\b"):
        params.evaluate.finetune.epochs
    with pytest.raises(UndeclaredParamError, match=r"params\.pretrain\b"):
        params.pretrain.lr
    with pytest.raises(UndeclaredParamError, match=r"params\.seeds\b"):
        params.seeds[0]


def test_values_hold_exactly_the_declared_entries():
    got = values(Params(), ("data", "pretrain.batch_size"))
    assert set(got) == {"data", "pretrain.batch_size"} and got["pretrain.batch_size"] == Params().pretrain.batch_size
