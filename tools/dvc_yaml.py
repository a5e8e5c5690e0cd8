"""Write the two generated lists of every stage in dvc.yaml from their one source, so neither is edited by hand:

- `params:` — the entries the stage reads, from `gsimclr/settings/declared.py` (which the stage enforces: an
  undeclared read raises);
- the `gsimclr/...` entries of `deps:` — the packages its module imports, transitively (its own module and
  `stages/context.py` as files), so a module added to a package needs no edit and a stage that starts
  importing another package re-runs when that package changes. `system/` and `pipeline/` read and move
  bytes, lay out paths and log to MLflow, but compute nothing an output depends on: they are not followed.

and the files of the top-level `knn_monitor` plot — both methods' kNN curves for each seed of params.yaml's
`seeds` (DVC's templating does not reach top-level plots). Everything else in dvc.yaml (commands, data deps,
outputs, comments) stays as written.

    python -m tools.dvc_yaml           # rewrite dvc.yaml in place
    python -m tools.dvc_yaml --check   # exit 1 naming each stage whose lists are out of date (tests/ run this)
"""

from __future__ import annotations

import argparse
import ast
import io
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

import yaml
from ruamel.yaml import YAML

from gsimclr.pipeline.layout import Layout
from gsimclr.settings.declared import declared
from gsimclr.settings.names import METHODS

REPO = Path(__file__).resolve().parents[1]
BOOKKEEPING = {"gsimclr/system", "gsimclr/pipeline"}
"""Packages a stage uses without computing anything its outputs depend on (a change there re-runs nothing)."""


def yaml_round_trip() -> YAML:
    """ruamel's round-trip loader with dvc.yaml's indentation, so an unchanged file is written back byte for byte."""
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def imported_modules(path: str, seen: set[str]) -> set[str]:
    """Every gsimclr module file `path` imports, transitively (repository-relative); what a bookkeeping module
    imports serves the bookkeeping (tracking draws with `outputs.plots`), so it is not followed."""
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gsimclr")):
            continue
        base = node.module.replace(".", "/")
        targets = [f"{base}/{alias.name}.py" for alias in node.names] if (REPO / base).is_dir() else [f"{base}.py"]
        for module in targets:
            if module not in seen:
                seen.add(module)
                if module.rsplit("/", 1)[0] not in BOOKKEEPING:
                    imported_modules(module, seen)
    return seen


def code_deps(subcommand: str) -> list[str]:
    """What a stage's code is: its module and `stages/context.py` as files, every other package it imports whole."""
    module = f"gsimclr/stages/{subcommand}.py"
    needed = set()
    for imported in imported_modules(module, {module}):
        package = imported.rsplit("/", 1)[0]
        needed.add(imported if package == "gsimclr/stages" else package)
    return sorted(needed - BOOKKEEPING)


def invocations(stage: dict[str, Any]) -> list[tuple[str, Optional[str]]]:
    """(gsimclr subcommand, --method) of each command a stage runs (one per method of a matrix)."""
    words = shlex.split(stage.get("do", stage)["cmd"])
    subcommand = next(word for word in words[1:] if not word.startswith(("-", "${")))
    method = words[words.index("--method") + 1] if "--method" in words else None
    methods = list(stage["matrix"]["method"]) if method == "${item.method}" else [method]
    return [(subcommand, name) for name in methods]


def generated(stage: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The stage's params and code deps as they should read. A matrix whose methods read different params
    cannot be one stage: that is an error to fix in dvc.yaml, not something to paper over."""
    runs = invocations(stage)
    params = {declared(subcommand, method) for subcommand, method in runs}
    if len(params) != 1:
        raise SystemExit(f"the methods of {runs} read different params: split the stage")
    return list(params.pop()), code_deps(runs[0][0])


def knn_curves(seeds: list[int]) -> dict[str, str]:
    """The kNN monitor's curve file of each method and seed -> the column the plot draws."""
    return {str(Layout().for_seed(seed).pretrain_knn(method)): "knn_val_acc" for seed in seeds for method in METHODS}


def synced(text: str, seeds: list[int]) -> tuple[str, list[str]]:
    """dvc.yaml `text` with every stage's generated lists and the kNN plot's files (for `seeds`) written, and
    what changed (stage names, `plots`)."""
    document = yaml_round_trip().load(text)
    changed = []
    for name, stage in document["stages"].items():
        body = stage.get("do", stage)
        params, code = generated(stage)
        deps = list(body["deps"])
        first_code = next(i for i, dep in enumerate(deps) if isinstance(dep, str) and dep.startswith("gsimclr/"))
        others = [dep for dep in deps if not (isinstance(dep, str) and dep.startswith("gsimclr/"))]
        new_deps = others[:first_code] + code + others[first_code:]
        if new_deps != deps or list(body.get("params") or []) != params:
            changed.append(name)
            body["deps"][:] = new_deps
            body["params"][:] = params
    (plot,) = (entry["knn_monitor"] for entry in document["plots"] if "knn_monitor" in entry)
    curves = knn_curves(seeds)
    if dict(plot["y"]) != curves:
        changed.append("plots")
        plot["y"].clear()
        plot["y"].update(curves)
    out = io.StringIO()
    yaml_round_trip().dump(document, out)
    return out.getvalue(), changed


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Change nothing; exit 1 if dvc.yaml is out of date.")
    parser.add_argument("--file", type=Path, default=REPO / "dvc.yaml")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml", help="Its `seeds` name the plot's files.")
    args = parser.parse_args(argv)
    text, changed = synced(args.file.read_text(), yaml.safe_load(args.params.read_text())["seeds"])
    if args.check:
        if changed:
            print(f"dvc.yaml is out of date in {', '.join(changed)}: run python -m tools.dvc_yaml", file=sys.stderr)
        return 1 if changed else 0
    args.file.write_text(text)
    print(f"dvc.yaml: rewrote {', '.join(changed)}" if changed else "dvc.yaml: up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
