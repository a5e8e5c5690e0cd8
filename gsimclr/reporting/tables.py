"""The report's tables: SimCLR against G-SimCLR per representation (the paper's Tables II and III), each method
against the untrained network and raw pixels, and every seed's value."""

from __future__ import annotations

from typing import Optional

from gsimclr.evaluation.stats import Summary, paired_difference, summarize, verdict
from gsimclr.outputs.metrics import ResultRow
from gsimclr.reporting.arm import bound_verdict
from gsimclr.reporting.rows import FINETUNE, cell_values, cells_by_seed, labels_of_rows
from gsimclr.settings.names import METHODS, ORACLE_LABEL, PIXELS, Control


def paper_figure(value: Optional[float]) -> str:
    """A paper figure (a fraction) in percent, as the tables print it."""
    return "–" if value is None else f"{100 * value:.2f}"


def method_table(rows: list[ResultRow], representations: list[str], reference: Optional[str]) -> list[str]:
    """SimCLR and G-SimCLR per representation, their paired difference with a verdict, and the paper's pair.

    The rows name their guided arm (`labels_of_rows`); the oracle bound is never called better."""
    cells = cell_values(rows)
    paper = {(r.method, r.representation): r.paper for r in rows}
    guided = labels_of_rows(rows)["gsimclr"]
    head = f"| representation | SimCLR | {guided} | {guided} − SimCLR (paired) | verdict |"
    rule = "| --- | ---: | ---: | ---: | --- |"
    if reference:
        head += " paper SimCLR | paper G-SimCLR |"
        rule += " ---: | ---: |"
    lines = [head, rule]
    for rep in representations:
        simclr, gsimclr = cells[("simclr", rep)], cells[("gsimclr", rep)]
        diff = paired_difference(gsimclr, simclr)
        said = bound_verdict(diff) if guided == ORACLE_LABEL else verdict(diff, guided, "SimCLR")
        line = f"| {rep} | {summarize(simclr)} | {summarize(gsimclr)} | {diff.format(signed=True)} | {said} |"
        if reference:
            line += f" {paper_figure(paper[('simclr', rep)])} | {paper_figure(paper[('gsimclr', rep)])} |"
        lines.append(line)
    return lines


def control_table(rows: list[ResultRow], representations: list[str], control: Control = "random_init") -> list[str]:
    """Each method's paired margin over a control under the same probe (or training), and whether it beats it.

    `control`: `random_init`, the untrained network at the same representation, or `pixels`, the one raw-pixel
    probe set against every representation (a representation a probe reads no better than the pixels
    themselves has learned nothing the probe can use)."""
    cells, labels = cell_values(rows), labels_of_rows(rows)
    lines = [
        f"| representation | {labels[control]} | "
        f"SimCLR − control (paired) | verdict | {labels['gsimclr']} − control (paired) | verdict |",
        "| --- | ---: | ---: | --- | ---: | --- |",
    ]
    for rep in representations:
        base = cells[(control, PIXELS if control == PIXELS else rep)]
        line = f"| {rep} | {summarize(base)} |"
        for method in METHODS:
            margin = paired_difference(cells[(method, rep)], base)
            line += f" {margin.format(signed=True)} | {beats(margin, labels[method])} |"
        lines.append(line)
    return lines


def beats(margin: Summary, method: str) -> str:
    """Plain words for a method's paired margin over a control."""
    if margin.n == 1:
        return "one seed: cannot tell"
    if margin.excludes_zero and margin.mean > 0:
        return f"{method} beats it"
    if margin.excludes_zero:
        return f"**{method} is worse than the control**"
    return f"**{method} does not beat it** (interval contains 0)"


def per_seed_table(rows: list[ResultRow], seeds: list[int]) -> list[str]:
    """Every cell of the tables for every seed: the spread behind each interval."""
    cells, labels = cells_by_seed(rows), labels_of_rows(rows)
    lines = [
        "| method | representation | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "| --- | --- |" + " ---: |" * len(seeds),
    ]
    lines += [
        f"| {labels[m]} | {'from scratch' if (m, rep) == ('random_init', FINETUNE) else rep} | "
        + " | ".join(f"{by_seed[s]:.2f}" for s in seeds)
        + " |"
        for (m, rep), by_seed in cells.items()
    ]
    return lines
