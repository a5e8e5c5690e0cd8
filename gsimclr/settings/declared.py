"""Which params each stage reads: the one source of the `params:` lists in `dvc.yaml` (`python -m tools.dvc_yaml`
writes them there).

DVC re-runs a stage when a parameter it declares changes, and only then. A stage that read a parameter
it does not declare would leave a stale output that DVC reports as current; so a stage is handed a
view of the params in which every undeclared section or key raises `UndeclaredParamError` when read.
`checkpoint_every` is operational (how often to save, not what is computed) and readable everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from pydantic import BaseModel

from gsimclr.settings.config import Params
from gsimclr.settings.names import CONTROLS, METHODS

OPERATIONAL = frozenset({"checkpoint_every"})
PRETRAINED_EVALUATION = ("data", "model", "evaluate")

DECLARED: dict[tuple[str, Optional[str]], tuple[str, ...]] = {
    ("prepare", None): ("data",),
    ("autoencoder", None): ("data", "autoencoder"),
    ("cluster", None): ("data", "autoencoder", "cluster", "pretrain.batch_size"),
    ("pretrain", "simclr"): ("data", "model", "pretrain"),
    # cluster.k / n_init: how refreshed pseudo labels are re-clustered (`guidance.refresh_every`).
    ("pretrain", "gsimclr"): ("data", "model", "pretrain", "guidance", "cluster.k", "cluster.n_init"),
    **{("evaluate", method): PRETRAINED_EVALUATION for method in (*METHODS, *CONTROLS)},
    ("evaluate", "supervised"): ("data", "model", "evaluate.supervised"),
    ("compare", None): ("seeds", "data", "cluster", "pretrain.batch_size", "guidance", "evaluate"),
}
"""(CLI subcommand, --method) -> the params entries it reads, as `dvc.yaml` lists them."""


class UndeclaredParamError(RuntimeError):
    """A stage read a parameter its declaration (and so `dvc.yaml`) does not list: a bug in the stage."""


class Undeclared:
    """Stands in for an undeclared params entry: any use of it raises at once, naming the entry."""

    def __init__(self, path: str) -> None:
        object.__setattr__(self, "_path", path)

    def _fail(self, *_: Any) -> Any:
        path = object.__getattribute__(self, "_path")
        raise UndeclaredParamError(
            f"params.{path} is read by a stage that does not declare it "
            "(declare it in gsimclr/settings/declared.py, then run `python -m tools.dvc_yaml`)"
        )

    __getattr__ = __getitem__ = __iter__ = __len__ = __bool__ = __float__ = __int__ = _fail


def declared(stage: str, method: Optional[str] = None) -> tuple[str, ...]:
    """The params entries stage `stage` (with `--method method`) reads."""
    return DECLARED[(stage, method)]


def view(params: Params, entries: Sequence[str]) -> Params:
    """`params` with every entry outside `entries` (and `OPERATIONAL`) replaced by an `Undeclared`."""
    return _view(params, set(entries) | OPERATIONAL, "")


def _view(model: BaseModel, entries: set[str], prefix: str) -> Any:
    updates: dict[str, Any] = {}
    for name in type(model).model_fields:
        path = f"{prefix}{name}"
        if path in entries:
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel) and any(entry.startswith(f"{path}.") for entry in entries):
            updates[name] = _view(value, entries, f"{path}.")
        else:
            updates[name] = Undeclared(path)
    return model.model_copy(update=updates)


def values(params: Params, entries: Sequence[str]) -> dict[str, Any]:
    """{entry: its JSON value} of the declared entries: what a run's identity and its logged params are."""
    dump = params.model_dump(mode="json")
    out: dict[str, Any] = {}
    for entry in entries:
        value: Any = dump
        for part in entry.split("."):
            value = value[part]
        out[entry] = value
    return out


def flat(config: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys for MLflow params (e.g. `pretrain.augment.flip`)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}", sub)
        else:
            out[prefix] = value

    for entry, value in config.items():
        walk(entry, value)
    return out
