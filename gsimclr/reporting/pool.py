"""One study's seeds, run in several places, pooled into one report.

A study on small machines may outlast one machine: its seeds then run in different folders, sessions or
machines, and each part is reported by its own `compare` or `pair` (diagnostics, figures, provenance). Every
test accuracy of a part is in its results.csv, one row per cell and seed; pooling reads those rows, refuses
a seed reported twice or a cell missing for some seed, and writes the tables `compare` writes over the union
of seeds (the statistics are the same functions, so pooled and single-folder reports agree to the digit). What
only the runs hold (label counts, pseudo-label diagnostics, provenance) stays in the parts' reports, which
the pooled one links.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from gsimclr.outputs.metrics import ResultRow, read_results, write_results
from gsimclr.reporting.figures import TABLE_FIGURES, draw_table_figures
from gsimclr.reporting.paper import PAPER_RESULTS
from gsimclr.reporting.report import accuracy_sections, figure_links, introduction, seeds_title
from gsimclr.reporting.rows import LABELS, TABLE_CELLS, pooled_metrics
from gsimclr.reporting.tables import per_seed_table
from gsimclr.settings.config import Params
from gsimclr.system.errors import UserError
from gsimclr.system.storage import write_json, write_text


def read_parts(paths: Sequence[Path]) -> tuple[list[ResultRow], dict[Path, list[int]]]:
    """The plain-accuracy rows of every part and each part's seeds: each seed from exactly one part, every table
    cell for every seed."""
    if len(paths) < 2:
        raise UserError("name two results.csv files or more: pooling one part changes nothing")
    rows: list[ResultRow] = []
    owner: dict[int, Path] = {}
    for path in paths:
        part = [row for row in read_results(path) if row.metric == "accuracy"]
        if not part:
            raise UserError(f"{path} has no accuracy rows")
        for seed in sorted({row.seed for row in part}):
            if seed in owner:
                raise UserError(f"seed {seed} is in both {owner[seed]} and {path}: pool each seed from one part")
            owner[seed] = path
        rows += part
    check_complete(rows, owner)
    return rows, {path: [seed for seed, owned_by in sorted(owner.items()) if owned_by == path] for path in paths}


def check_complete(rows: list[ResultRow], owner: dict[int, Path]) -> None:
    """Every cell of the tables for every seed, and one paper figure per cell: parts of one study, not a mix."""
    present = {(row.method, row.representation, row.seed) for row in rows}
    for _, method, representation, _, _ in TABLE_CELLS:
        for seed, path in owner.items():
            if (method, representation, seed) not in present:
                raise UserError(f"{path}: no {LABELS[method]} {representation} row for seed {seed}")
    papers: dict[tuple[str, str], set] = {}
    for row in rows:
        papers.setdefault((row.method, row.representation), set()).add(row.paper)
    mixed = sorted(f"{LABELS[m]} {rep}" for (m, rep), figures in papers.items() if len(figures) > 1)
    if mixed:
        raise UserError(f"the parts cite different paper figures ({', '.join(mixed)}): parts of different studies?")


def pooled_report(params: Params, rows: list[ResultRow], parts: dict[Path, list[int]], output: Path) -> str:
    """results.md of the pooled seeds: the tables and controls `compare` writes, every seed's value, and links to
    the parts' own reports for what results.csv does not hold."""
    seeds = sorted({row.seed for row in rows})
    sources = []
    for path, part_seeds in parts.items():
        link = os.path.relpath(path.parent / "results.md", output)
        sources.append(f"- [{link}]({link}): seed{'s' * (len(part_seeds) > 1)} {', '.join(map(str, part_seeds))}")
    return "\n".join(
        [
            seeds_title(params, seeds),
            "",
            *introduction(params),
            f"Pooled by `gsimclr pool` from {len(parts)} parts of the study, each with its own report (`compare`'s, "
            "or `pair`'s for an arm paired with an earlier study's SimCLR arm): the label counts, pseudo-label "
            "diagnostics, pretraining curves and MLflow provenance of each seed are there:",
            "",
            *sources,
            "",
            *accuracy_sections(params, rows, None),
            "## Per seed",
            "",
            *per_seed_table(rows, seeds),
            "",
            figure_links([f"{name}.png" for name in TABLE_FIGURES]),
            "",
        ]
    )


def check_reference(rows: list[ResultRow], reference: Optional[str]) -> None:
    """The parts cite the paper figures of the params' `data.paper_reference`: the report's probe grid, arm and
    paper columns come from those params, so they must be the study's own."""
    paper = PAPER_RESULTS.get(reference or "", {})
    expected = {(m, rep): paper[key] / 100 if key in paper else None for _, m, rep, _, key in TABLE_CELLS}
    for row in rows:
        cited, own = row.paper, expected[(row.method, row.representation)]
        if (cited is None) != (own is None) or (cited is not None and own is not None and not math.isclose(cited, own)):
            raise UserError(
                f"the parts cite other paper figures than data.paper_reference={reference!r} of these params "
                "(pass the study's own params with -p)"
            )


def pool(params: Params, parts: Sequence[Path], output: Path) -> str:
    """Write results.md, results.csv, metrics.json and the table's figures of the pooled seeds into `output`;
    returns the Markdown."""
    for path in parts:
        if path.parent.resolve() == output.resolve():
            raise UserError(f"--output {output} holds the part {path}: write the pooled report to another folder")
    rows, seeds_by_part = read_parts(parts)
    check_reference(rows, params.data.paper_reference)
    output.mkdir(parents=True, exist_ok=True)
    draw_table_figures(rows, output)
    text = pooled_report(params, rows, seeds_by_part, output)
    write_results(output / "results.csv", rows)
    write_json(output / "metrics.json", pooled_metrics(rows))
    write_text(output / "results.md", text)
    return text
