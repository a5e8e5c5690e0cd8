"""Reading a parameter file into the validated `Params`: every problem of the file on one line naming the key
(unknown keys, wrong types, values out of range), never a traceback."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from gsimclr.settings.config import Params
from gsimclr.system.errors import UserError
from gsimclr.system.inputs import read_yaml


def _describe(error: ValidationError, source: str) -> str:
    """Every problem pydantic found, on one line: `file: key: what; key: what`."""
    problems = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in problem and not isinstance(problem["input"], (dict, list)):
            message = f"{message} (got {problem['input']!r})"
        problems.append(f"{key}: {message}")
    return f"{source}: " + "; ".join(problems)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate a params file; any problem becomes a one-line `UserError` naming the key."""
    path = Path(path)
    raw = read_yaml(path, "params file")
    if raw is None:  # an empty file would otherwise run every default without a word
        raise UserError(f"{path}: the params file is empty (copy params.yaml or a file from pipelines/)")
    return validate_params(raw, str(path))


def validate_params(raw: object, source: str) -> Params:
    """Validate a parsed params tree; any problem becomes a one-line `UserError` naming `source` and the key."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_describe(exc, source)) from None
