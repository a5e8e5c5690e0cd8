"""MkDocs hooks: the parameter reference generated from `gsimclr/settings/config.py` (the field docstrings
are the only copy of what each parameter means), and the committed study reports and benchmark outputs
served beside the pages that link to them."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from pydantic import BaseModel

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "gsimclr" / "settings" / "config.py"
SERVED = ("results/**/*", "benchmarks/results/*")
MARKER = "<!-- parameter reference -->"
BOUNDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "at least", "max_length": "at most"}


def field_docstrings() -> dict[str, dict[str, str]]:
    """{class name: {field name: the string literal that follows the field}} from config.py's source."""
    tree = ast.parse(CONFIG.read_text())
    docs: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            body = node.body
            docs[node.name] = {
                target.target.id: " ".join(ast.literal_eval(following.value).split())
                for target, following in itertools.pairwise(body)
                if isinstance(target, ast.AnnAssign)
                and isinstance(target.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            }
    return docs


def annotations() -> dict[str, dict[str, str]]:
    """{class name: {field name: its annotation as written}}."""
    source = CONFIG.read_text()
    return {
        node.name: {
            item.target.id: ast.get_source_segment(source, item.annotation) or ""
            for item in node.body
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
        }
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef)
    }


def default_of(info: Any) -> str:
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{json.dumps(value)}`"


def bounds_of(info: Any) -> str:
    found = []
    for item in info.metadata:
        for name, symbol in BOUNDS.items():
            if getattr(item, name, None) is not None:
                found.append(f"{symbol} {getattr(item, name)}")
    return ", ".join(found)


def section_tables(model: type[BaseModel], prefix: str, docs: dict, types: dict) -> list[str]:
    """A table per section (`prefix`), nested sections after it."""
    rows, nested = [], []
    for name, info in model.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((annotation, key))
            continue
        meaning = docs.get(model.__name__, {}).get(name, "")
        kind = types.get(model.__name__, {}).get(name, "").replace("|", "\\|")
        rows.append(f"| `{key}` | `{kind}` | {default_of(info)} | {bounds_of(info)} | {meaning} |")
    out = []
    if rows:
        title = prefix or "top level"
        out += [f"## `{title}`", "", " ".join((model.__doc__ or "").split()), ""]
        out += ["| key | type | default | range | meaning |", "| --- | --- | --- | --- | --- |", *rows, ""]
    for section, key in nested:
        out += section_tables(section, key, docs, types)
    return out


def parameter_reference() -> str:
    from gsimclr.settings.config import Params

    return "\n".join(section_tables(Params, "", field_docstrings(), annotations()))


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    return markdown.replace(MARKER, parameter_reference()) if MARKER in markdown else markdown


def on_files(files: Files, config: Any) -> Files:
    for pattern in SERVED:
        for path in sorted(REPO.glob(pattern)):
            if path.is_file():
                relative = str(path.relative_to(REPO))
                files.append(File(relative, str(REPO), config["site_dir"], config["use_directory_urls"]))
    return files
