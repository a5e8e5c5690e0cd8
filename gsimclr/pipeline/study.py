"""Run a study file (`pipelines/*.yaml`) as a DVC experiment without hand-editing `params.yaml`.

A study is a complete parameter set. `dvc exp run -S` takes Hydra overrides, so the study becomes
`++key=value` for each of its leaves and `~key` for each leaf of `params.yaml` the study does not set
(so defaults apply): the experiment's `params.yaml` then says exactly what the study says, and
`dvc exp show` / MLflow record it like any other experiment.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import yaml

from gsimclr.settings.config import Params
from gsimclr.settings.loading import load_params, validate_params
from gsimclr.system import inputs
from gsimclr.system.errors import UserError

DATASET_HELP = {
    "cifar10": "CIFAR-10 in ImageFolder layout (train/<class>/*.jpg, test/<class>/*.jpg)",
    "imagenet_subset": "the ImageNet Subset in ImageFolder layout (train/<class>/, test/<class>/)",
}
"""What a study's `data.root` must hold, by the paper dataset it reproduces."""


def leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value for every non-mapping value (lists are values, as in `params.yaml`)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(leaves(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def hydra_value(value: Any) -> str:
    """A YAML value in Hydra's override grammar (strings quoted, so paths and specials survive)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{hydra_value(item)}" for key, item in value.items()) + "}"
    raise UserError(f"cannot express {value!r} as a DVC parameter override")


def read_yaml(path: Path, what: str = "study file") -> dict[str, Any]:
    """Read a YAML parameter file (`what` names it in errors); a missing or invalid one is a `UserError`."""
    tree = inputs.read_yaml(path, what) or {}
    if not isinstance(tree, dict):
        raise UserError(f"{path} must hold a mapping of parameter sections")
    return tree


def overrides(study: Path, current: Path, extra: Sequence[str] = ()) -> list[str]:
    """Hydra overrides that turn `current` (params.yaml) into `study`, then the user's own `extra` ones."""
    load_params(study)  # a study with a typo fails here, before DVC starts anything
    wanted, present = leaves(read_yaml(study)), leaves(read_yaml(current, "params file"))
    # Hydra cannot delete a null entry ("does not exist"); null is the default of every entry that may be null, so
    # leaving one the study omits says what omitting it says
    removed = [
        f"~{key}"
        for key, value in present.items()
        if value is not None and key not in wanted and not any(key.startswith(f"{w}.") for w in wanted)
    ]
    # `key=value` only overrides a key the file has; `++` also adds one the study leaves at its default
    own = [item if item.startswith(("+", "~")) else f"++{item}" for item in extra]
    return removed + [f"++{key}={hydra_value(value)}" for key, value in wanted.items()] + own


def with_overrides(tree: dict[str, Any], extra: Sequence[str]) -> dict[str, Any]:
    """`tree` with the user's `key=value` / `++key=value` / `~key` overrides applied (values read as YAML)."""
    tree = json.loads(json.dumps(tree))  # a deep copy of plain YAML data
    for item in extra:
        deleted = item.startswith("~")
        key, _, text = item.lstrip("+~").partition("=")
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override {item!r}: {part} is not a section")
        if deleted:
            node.pop(leaf, None)
        else:
            try:
                node[leaf] = yaml.safe_load(text) if text else None
            except yaml.YAMLError:
                raise UserError(f"override {item!r}: the value is not valid YAML") from None
    return tree


def effective_params(study: Path, extra: Sequence[str]) -> Params:
    """The validated parameters the experiment will run with: the study file and then the user's overrides."""
    return validate_params(with_overrides(read_yaml(study), extra), f"{study} with -S {' '.join(extra)}".strip())


def check_data_root(study: Path, extra: Sequence[str], cwd: Path) -> None:
    """A study on a dataset the project does not ship needs `data.root` (after the user's overrides) to hold it, and
    `data.pool`, where it names one, to be a folder: say where it is expected and how to pass it, before DVC starts
    anything (relative paths are read from the project folder `cwd`)."""
    data = effective_params(study, extra).data
    if data.pool is not None and not (cwd / data.pool).is_dir():
        raise UserError(
            f"{study}: data.pool={data.pool} is not a folder; pass your images' folder with -S data.pool=/abs/path"
        )
    if data.name == "digits" or (data.name == "cifar10" and data.download):
        return
    root = cwd / (data.root or ".")
    needed = ["train", "test"] if data.name == "imagefolder" else ["cifar-10-batches-py"]
    if all((root / part).is_dir() for part in needed):
        return
    what = DATASET_HELP.get(data.paper_reference or "", f"the {data.name} dataset")
    raise UserError(f"{study}: data.root={data.root} does not hold {what}; pass its folder with -S data.root=/abs/path")


def experiment_name(study: Path, name: Optional[str] = None) -> str:
    """The experiment's name: `name`, else the study file's stem."""
    return name or study.stem


def exp_run_command(
    study: Path,
    current: Path,
    extra: Sequence[str] = (),
    queue: bool = False,
    name: Optional[str] = None,
    targets: Sequence[str] = (),
) -> list[str]:
    """`dvc exp run` named `name` (default: after the study file), with every override as its own `-S`, of
    `targets` only (default: every stage).

    DVC refuses a name an experiment of the same baseline already has, and only after running it, so
    variants of one study (extra `-S`) need names of their own.
    """
    command = ["dvc", "exp", "run", "--name", experiment_name(study, name)]
    if queue:
        command.append("--queue")
    for override in overrides(study, current, extra):
        command += ["-S", override]
    return command + list(targets)


def exp_save_command(study: Path, name: Optional[str] = None) -> list[str]:
    """`dvc exp save` of the workspace under the experiment's name, replacing what an earlier, unfinished
    run of the same study saved under it."""
    return ["dvc", "exp", "save", "--name", experiment_name(study, name), "--force"]


def already_applied(study: Path, current: Path, extra: Sequence[str] = ()) -> bool:
    """Whether `current` (params.yaml) already says exactly what the study with `extra` says: a re-run of the
    same study then resumes its stages instead of applying the parameters again."""
    from dvc.utils.hydra import apply_overrides

    changes = overrides(study, current, extra)  # validates the study and reads `current` first: one-line errors
    with tempfile.TemporaryDirectory() as scratch:
        applied = Path(scratch) / current.name
        shutil.copy(current, applied)
        apply_overrides(applied, changes)
        return read_yaml(applied, "params file") == read_yaml(current, "params file")
