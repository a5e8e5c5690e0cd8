"""Commands over whole studies: run the pipeline (`repro`), run a parameter set as a DVC experiment
(`study`), pool one study's seeds reported in several places (`pool`), pair a guided arm trained on its own with an
earlier study's SimCLR arm and controls (`pair`), and put several studies' results side by side (`tabulate`)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from gsimclr.cli.app import app
from gsimclr.cli.errors import reported_errors
from gsimclr.system.errors import UserError

Metric = Literal["accuracy", "balanced_accuracy"]
"""The accuracy `tabulate` reads from each results.csv."""


@app.command()
def tabulate(
    studies: Annotated[
        list[str], typer.Argument(help="LABEL=path/to/results.csv, one per study (e.g. one per DVC experiment).")
    ],
    metric: Annotated[
        Metric, typer.Option(help="balanced_accuracy: mean per-class accuracy (long-tailed runs).")
    ] = "accuracy",
    representation: Annotated[
        list[str], typer.Option("--representation", "-r", help="Rows to show (repeatable): P1, P2, P3, fine-tune.")
    ] = ["P1", "P2", "P3", "fine-tune"],  # noqa: B006 (typer reads the default; it is never mutated)
    output: Annotated[Optional[Path], typer.Option(help="Also write the table to this file.")] = None,
    figure: Annotated[
        Optional[Path],
        typer.Option(
            help="Also draw the paired differences (guided arm − SimCLR, mean ± 95 % interval per study and "
            "representation) as a forest plot, a PNG file."
        ),
    ] = None,
    data: Annotated[
        str, typer.Option(help='The dataset, named in the figure\'s title (e.g. "CIFAR-10 (JPEG q75 copy)").')
    ] = "",
) -> None:
    """Put several studies side by side: each one's guided arm against its own SimCLR arm, paired by seed, then the
    controls each study ran (the untrained network, raw pixels) with both arms' margins over them.

    Example: gsimclr tabulate paper=results/base/results.csv debiased=results/debiased/results.csv
    --figure results/differences.png --data "ImageNet subset"
    """
    from gsimclr.outputs import plots
    from gsimclr.reporting.tabulate import differences_figure, read_studies
    from gsimclr.reporting.tabulate import tabulate as make_table
    from gsimclr.system.storage import write_text

    with reported_errors():
        if figure is not None and figure.suffix.lower() != ".png":
            raise UserError(f"--figure {figure}: the figure is a PNG; name a file ending in .png")
        studies_read = read_studies(studies, metric)
        table = make_table(studies_read, representation)
        if output is not None:
            write_text(output, table)
        if figure is not None:
            drawing = differences_figure(studies_read, representation, metric, data)
            try:
                plots.save_png(drawing, figure)
            finally:
                plots.close(drawing)
    typer.echo(table, nl=False)


@app.command()
def pool(
    ctx: typer.Context,
    parts: Annotated[
        list[Path], typer.Argument(help="The results.csv of each part of the study (each written by `compare`).")
    ],
    output: Annotated[Path, typer.Option(help="Folder for the pooled results.md, results.csv, metrics.json.")],
) -> None:
    """Pool one study's seeds that ran in several folders or machines into one report (the study's params, from
    --params, name the paper's figures and the probe).

    Example: gsimclr -p pipelines/cifar10-cpu.yaml pool part-a/results.csv part-b/results.csv --output results/
    """
    from gsimclr.reporting.pool import pool as pool_parts
    from gsimclr.settings.loading import load_params

    with reported_errors():
        text = pool_parts(load_params(ctx.obj["params"]), parts, output)
    typer.echo(text)


@app.command()
def pair(
    ctx: typer.Context,
    baseline: Annotated[
        Path, typer.Argument(help="results.csv of the earlier study whose SimCLR arm and controls to reuse.")
    ],
    baseline_params: Annotated[
        Path, typer.Option(help="That study's params file: the recipe (data, model, pretrain, evaluate) must match.")
    ],
    output: Annotated[Path, typer.Option(help="Folder for the paired results.md, results.csv, metrics.json.")],
) -> None:
    """Report a guided arm trained on its own (only `pretrain` and `evaluate --method gsimclr` ran in this folder,
    for every seed of --params) beside an earlier study's SimCLR arm and controls of the same seeds and recipe, as
    `compare` would have -- for a new arm on another machine of the same CPU kind, with the SimCLR code path
    unchanged, where DVC's run cache cannot restore SimCLR.

    Example: gsimclr -p params.yaml pair results/cifar10-cpu/results.csv --baseline-params
    pipelines/cifar10-cpu.yaml --output results/oracle-batches
    """
    from gsimclr.pipeline.paired_arm import pair as pair_arm
    from gsimclr.settings.loading import load_params

    with reported_errors():
        params = load_params(ctx.obj["params"])
        text = pair_arm(params, load_params(baseline_params), Path("."), baseline, output)
    typer.echo(text)


@app.command()
def figures(
    tables: Annotated[list[Path], typer.Argument(help="The results.csv of each report to redraw the figures of.")],
) -> None:
    """Redraw the figures a report draws from its table alone (accuracy_by_seed.png, paired_differences.png: the
    forest plot of the paired differences) beside each results.csv, as `compare` and `pool` draw them.

    Example: gsimclr figures results/cifar10-cpu/results.csv results/imagenet5-cpu/results.csv
    """
    from gsimclr.outputs.metrics import read_results
    from gsimclr.reporting.figures import draw_table_figures
    from gsimclr.system.errors import UserError

    with reported_errors():
        for table in tables:
            rows = [row for row in read_results(table) if row.metric == "accuracy"]
            if not rows:
                raise UserError(f"{table} has no accuracy rows")
            written = draw_table_figures(rows, table.parent)
            typer.echo(f"{table}: " + ", ".join(str(path) for path in written))


JOBS_HELP = "Stages run at once (default: 2 on a machine with two cores or more, else 1)."


@app.command()
def study(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A complete parameter set, e.g. pipelines/imagenet5-cpu.yaml.")],
    set_param: Annotated[
        list[str],
        typer.Option(
            "--set-param",
            "-S",
            help="Extra Hydra override applied after the study, e.g. data.root=/data/imagenet-5-categories.",
        ),
    ] = [],  # noqa: B006 (typer reads the default; it is never mutated)
    name: Annotated[
        Optional[str],
        typer.Option(
            "--name",
            "-n",
            help="Experiment name (default: the file's stem); give variants of one study names of their own.",
        ),
    ] = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help=JOBS_HELP)] = None,
    queue: Annotated[
        bool,
        typer.Option(help="Queue the experiment for `dvc queue start` (one stage at a time) instead of running it."),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the commands and exit.")] = False,
) -> None:
    """Run a study file as a named DVC experiment; params.yaml is not edited by hand.

    `dvc exp run --name NAME -S ... prepare` applies the study's parameters and records the experiment; every
    stage then runs as `gsimclr repro` runs them (several at a time, whole seeds first), and `dvc exp save`
    records the finished experiment under the same name. After an interruption re-run the same command: the
    parameters are already applied, so it resumes from the stages' checkpoints.

    Example: gsimclr study pipelines/imagenet5-cpu.yaml -S data.root=/data/imagenet-5-categories
    """
    from gsimclr.pipeline.study_lock import one_study_at_a_time

    with reported_errors():
        if queue and jobs is not None:
            raise UserError("--queue runs the experiment later, one stage at a time: drop --jobs or --queue")
        commands = study_commands(file, ctx.obj["params"], set_param, name, None if queue else jobs or 0)
    for command in commands:
        typer.echo(shlex.join(command))
    if dry_run:
        return
    if queue:
        raise typer.Exit(subprocess.run(commands[0]).returncode)
    with reported_errors(), one_study_at_a_time():  # the apply and save steps too: DVC's lock is not enough
        *apply, (_, _, _, lanes), save = commands
        if apply and (returncode := subprocess.run(apply[0]).returncode):
            raise typer.Exit(returncode)
        run_stages([], int(lanes))
        raise typer.Exit(subprocess.run(save).returncode)


def study_commands(
    file: Path, current: Path, set_param: list[str], name: Optional[str], jobs: Optional[int]
) -> list[list[str]]:
    """What `gsimclr study` runs: `jobs` None queues the experiment (one command); else the apply step (unless the
    study's parameters are applied already), `gsimclr repro` with `jobs` lanes (0: the default) and the save step.
    The study is validated and its data root checked first."""
    from gsimclr.pipeline.repro import default_jobs, stage_graph
    from gsimclr.pipeline.study import already_applied, check_data_root, exp_run_command, exp_save_command

    if jobs is None:
        queued = [exp_run_command(file, current, set_param, queue=True, name=name)]
        check_data_root(file, set_param, Path.cwd())
        return queued
    applied = already_applied(file, current, set_param)  # the study is validated here, first
    check_data_root(file, set_param, Path.cwd())
    first = [stage for stage, needs in stage_graph(Path.cwd()).needs.items() if not needs]
    apply = [] if applied else [exp_run_command(file, current, set_param, name=name, targets=first)]
    return [*apply, ["gsimclr", "repro", "--jobs", str(jobs or default_jobs())], exp_save_command(file, name)]


@app.command()
def repro(
    targets: Annotated[
        list[str], typer.Argument(help="Stages to bring up to date, with everything upstream (default: all).")
    ] = [],  # noqa: B006 (typer reads the default; it is never mutated)
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help=JOBS_HELP)] = None,
) -> None:
    """`dvc repro`, several independent stages at a time (seeds, arms, controls), each with cores / jobs threads.

    Every stage runs as `dvc repro --single-item STAGE` once the stages it depends on are done, so DVC decides what
    changed and records dvc.lock as always; each stage's output goes to .gsimclr/logs/<stage>.log. Whole seeds
    finish first (a later seed only takes a core the earlier ones leave idle), so an interrupted study keeps
    complete seeds.

    Example: gsimclr repro --jobs 2
    """
    from gsimclr.pipeline.repro import default_jobs

    run_stages(targets, jobs or default_jobs())


def run_stages(targets: list[str], lanes: int) -> None:
    """`targets` (default: every stage) and everything upstream, `lanes` stages at a time, a line per finished
    stage; a failed stage is a one-line error naming its log, and exit 1."""
    import os

    from tqdm import tqdm

    from gsimclr.pipeline.layout import Layout
    from gsimclr.pipeline.repro import Outcome, run_graph, stage_graph
    from gsimclr.pipeline.study_lock import one_study_at_a_time

    with reported_errors(resumable=True), one_study_at_a_time() as record_running:
        pipeline = stage_graph(Path.cwd(), targets)
        threads = max(1, (os.cpu_count() or 1) // lanes)
        typer.echo(f"{len(pipeline.needs)} stages, {lanes} at a time, {threads} thread(s) each, whole seeds first")
        bar = tqdm(total=len(pipeline.needs), unit="stage", disable=None)  # no bar where stdout is not a terminal

        def report(outcome: Outcome) -> None:
            what = "failed" if outcome.returncode else ("ran" if outcome.ran else "unchanged")
            bar.write(f"{outcome.stage:<28} {what:<9} {outcome.seconds:7.1f} s")
            bar.update()

        outcomes = run_graph(pipeline, lanes, threads, Layout().stage_logs, report, on_running=record_running)
        bar.close()
    failed = [outcome for outcome in outcomes if outcome.returncode]
    for outcome in failed:
        typer.echo(f"error: stage {outcome.stage} failed: {outcome.reason} (its log: {outcome.log})", err=True)
    if failed:
        raise typer.Exit(1)
