"""Each stage reads exactly the params `dvc.yaml` declares for it (gsimclr/settings/declared.py), so a changed
parameter re-runs every stage whose output it can change, and no other."""

import shlex

import pytest
import yaml
from conftest import REPO

from gsimclr.settings.config import Params
from gsimclr.settings.declared import DECLARED, UndeclaredParamError, values, view


def dvc_stage_commands() -> list[tuple[str, str, str | None, list[str]]]:
    """(dvc stage, gsimclr subcommand, --method, declared params) for every stage and matrix method."""
    out = []
    for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        words = shlex.split(body["cmd"])
        subcommand = next(w for w in words[1:] if not w.startswith("-") and not w.startswith("${"))
        method = words[words.index("--method") + 1] if "--method" in words else None
        methods = stage["matrix"]["method"] if method == "${item.method}" else [method]
        out += [(name, subcommand, m, sorted(body.get("params") or [])) for m in methods]
    return out


@pytest.mark.parametrize("stage,subcommand,method,params", dvc_stage_commands())
def test_dvc_yaml_declares_what_the_stage_reads(stage, subcommand, method, params):
    assert params == sorted(DECLARED[(subcommand, method)]), f"dvc.yaml stage {stage} vs gsimclr/settings/declared.py"


def test_every_declared_stage_is_in_dvc_yaml():
    assert {(sub, method) for _, sub, method, _ in dvc_stage_commands()} == set(DECLARED)


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
