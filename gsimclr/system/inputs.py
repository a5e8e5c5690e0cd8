"""One layer for every file the project reads from a user: params and study files, meta.json, results tables.

Each reader here refuses, in one line naming the file, what would otherwise hang, traceback or silently
lose data: a path that is not a regular file (a FIFO blocks `open` forever, a device never ends), bytes
that are not UTF-8, and a YAML mapping with the same key twice (PyYAML keeps the last and drops the rest,
so a repeated `pretrain:` section would silently vanish). No reader here ever runs code from a file:
YAML is read with the safe loader, JSON and CSV are data only.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from gsimclr.system.errors import UserError


def regular_file(path: Path, what: str, missing: type[UserError] = UserError) -> Path:
    """`path` if it is a regular file (links followed); else a one-line error naming `what` (`missing`'s class
    when nothing is there), without ever opening it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise missing(f"{what} not found: {path}") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise UserError(f"{what} {path} is not a regular file (a folder, FIFO, socket or device)")
    return path


def read_text(path: Path, what: str, missing: type[UserError] = UserError) -> str:
    """The UTF-8 text of a regular file; anything else is a one-line `UserError` naming the file."""
    try:
        return regular_file(path, what, missing).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (the earlier one would be ignored)", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, what: str, missing: type[UserError] = UserError) -> Any:
    """A YAML file's data (safe loader, no duplicate keys); every problem is one line naming the file and line."""
    text = read_text(path, what, missing)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or ""
        if problem.startswith("duplicate key"):
            raise UserError(f"{path}{where}: {problem}") from None
        raise UserError(f"{path}{where}: not valid YAML{f' ({problem})' if problem else ''}") from None
