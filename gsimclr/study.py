"""Run a study file (`pipelines/*.yaml`) as a DVC experiment without hand-editing `params.yaml`.

A study is a complete parameter set. `dvc exp run -S` takes Hydra overrides, so the study becomes
`++key=value` for each of its leaves and `~key` for each leaf of `params.yaml` the study does not set
(so defaults apply): the experiment's `params.yaml` then says exactly what the study says, and
`dvc exp show` / MLflow record it like any other experiment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import yaml

from gsimclr.config import load_params
from gsimclr.errors import UserError


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


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML parameter file; a missing or invalid one is a `UserError`."""
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"study file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(tree, dict):
        raise UserError(f"{path} must hold a mapping of parameter sections")
    return tree


def overrides(study: Path, current: Path, extra: Sequence[str] = ()) -> list[str]:
    """Hydra overrides that turn `current` (params.yaml) into `study`, then the user's own `extra` ones."""
    load_params(study)  # a study with a typo fails here, before DVC starts anything
    wanted, present = leaves(read_yaml(study)), leaves(read_yaml(current))
    removed = [f"~{key}" for key in present if key not in wanted and not any(key.startswith(f"{w}.") for w in wanted)]
    # `key=value` only overrides a key the file has; `++` also adds one the study leaves at its default
    own = [item if item.startswith(("+", "~")) else f"++{item}" for item in extra]
    return removed + [f"++{key}={hydra_value(value)}" for key, value in wanted.items()] + own


def exp_run_command(
    study: Path, current: Path, extra: Sequence[str] = (), queue: bool = False, name: Optional[str] = None
) -> list[str]:
    """`dvc exp run` named `name` (default: after the study file), with every override as its own `-S`.

    DVC refuses a name an experiment of the same baseline already has, and only after running it, so
    variants of one study (extra `-S`) need names of their own.
    """
    command = ["dvc", "exp", "run", "--name", name or study.stem]
    if queue:
        command.append("--queue")
    for override in overrides(study, current, extra):
        command += ["-S", override]
    return command
