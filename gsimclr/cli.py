"""The `gsimclr` command line: parse, load the config, run one stage, map errors to exit codes.

Exit codes: 0 ok, 1 runtime failure (diverged training, full disk), 2 bad usage or config, 3 missing
upstream artifact, 130 interrupted. User mistakes print one line; internal errors keep their traceback.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from gsimclr.settings.names import EvalMethod, Method, Stream
from gsimclr.system.errors import DiskFullError, TrainingDivergedError, UserError, environment_fault

app = typer.Typer(
    help="G-SimCLR: SimCLR with pseudo-label-guided batches, as a reproducible, tracked pipeline.\n\n"
    "Stages run in order: prepare -> train -> cluster -> pretrain -> evaluate -> compare (dvc repro runs them all, "
    "once per seed); `gsimclr study FILE` runs a parameter set from pipelines/ as a DVC experiment.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


RestartOption = Annotated[bool, typer.Option("--restart", help="Ignore a resume checkpoint and train from scratch.")]


RESUMABLE = ("autoencoder", "pretrain", "evaluate")
"""The stages that checkpoint their training loop; the others start again when re-run."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `kill`, schedulers and `dvc exp` send), raised where SIGINT would raise KeyboardInterrupt."""


@contextmanager
def reported_errors(resumable: bool = False) -> Iterator[None]:
    """Turn known failures into one line on stderr and their exit code, without a traceback. SIGTERM is handled
    like Ctrl-C: one line saying what was kept and how to go on (`resumable`: whether the work has checkpoints),
    exit 128 + the signal's number."""

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    main_thread = threading.current_thread() is threading.main_thread()  # only it may install a handler
    previous = signal.signal(signal.SIGTERM, terminate) if main_thread else None
    try:
        yield
    except (UserError, TrainingDivergedError, DiskFullError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        fault = environment_fault(exc)  # torch, sqlite and MLflow each word a full disk their own way
        if fault is None:
            raise
        typer.echo(f"error: {fault}; what was written before is intact: fix that and re-run", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt as exc:
        how = (
            "re-run the same command to resume from the last checkpoint"
            if resumable
            else "this step keeps no checkpoint (finished outputs are intact): re-run the same command to redo it"
        )
        typer.echo(f"{'terminated' if isinstance(exc, Terminated) else 'interrupted'}: {how}", err=True)
        raise typer.Exit(128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(ctx: typer.Context, name: str, stage: Callable, method: Optional[str] = None, restart: bool = False) -> Any:
    """Build the context of stage `name` (its declared params only), seed the RNGs, and run `stage` with
    its errors reported."""
    with reported_errors(resumable=name in RESUMABLE):
        from gsimclr.pipeline.layout import Layout
        from gsimclr.settings.loading import load_params
        from gsimclr.stages.context import seed_everything, stage_context
        from gsimclr.training.device import select_device

        params = load_params(ctx.obj["params"])
        seed = params.seeds[0] if ctx.obj["seed"] is None else ctx.obj["seed"]
        if seed not in params.seeds:
            raise UserError(
                f"--seed {seed} is not one of params `seeds` {params.seeds}: add it there so `compare` sees it"
            )
        device = select_device(ctx.obj["device"])
        seed_everything(seed)
        context = stage_context(params, name, method, seed, Layout(), device, restart, ctx.obj["stream"])
        return stage(context, method) if method is not None else stage(context)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"gsimclr {version('gsimclr')}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    params: Annotated[Path, typer.Option("--params", "-p", help="Parameter file to read.")] = Path("params.yaml"),
    device: Annotated[str, typer.Option(help="auto (cuda -> mps -> cpu), cpu, cuda, cuda:N or mps.")] = "auto",
    stream: Annotated[
        Stream,
        typer.Option(
            help="auto: copy each split onto the device when it takes at most a quarter of the free memory, "
            "else stream batches from the prepared arrays (read ahead in the background); on / off: always / never "
            "stream. Results are identical either way.",
        ),
    ] = "auto",
    seed: Annotated[
        Optional[int],
        typer.Option(
            min=0,
            help="Which run of the study: its artifacts go under artifacts/seed<N>/ "
            "(default: the first of params `seeds`).",
        ),
    ] = None,
) -> None:
    """Global options shared by every stage."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    ctx.obj = {"params": params, "device": device, "seed": seed, "stream": stream}


@app.command()
def prepare(ctx: typer.Context) -> None:
    """Decode the dataset once into memory-mapped arrays that every other stage reads (prepared/).

    Example: gsimclr prepare
    """
    from gsimclr.stages.prepare import prepare as run_prepare

    meta = _run(ctx, "prepare", run_prepare)
    shapes = meta["shapes"]
    typer.echo(
        f"prepared: {shapes['train_x'][0]} training and {shapes['test_x'][0]} test images, digest {meta['digest']}"
    )


@app.command()
def autoencoder(ctx: typer.Context, restart: RestartOption = False) -> None:
    """Train the denoising autoencoder (early-stopped on a validation split of the training data).

    Example: gsimclr autoencoder
    """
    from gsimclr.stages.autoencoder import train_autoencoder

    metrics = _run(ctx, "autoencoder", train_autoencoder, restart=restart)
    typer.echo(f"autoencoder: best epoch {metrics['best_epoch']}, val MSE {metrics['val_loss']:.5f}")


app.command("train", hidden=True, help="Alias of `gsimclr autoencoder` (its name before 0.2).")(autoencoder)


@app.command()
def cluster(ctx: typer.Context) -> None:
    """Cluster the autoencoder's bottleneck features with k-means into pseudo labels.

    Example: gsimclr cluster
    """
    from gsimclr.stages.cluster import cluster as run_cluster

    metrics = _run(ctx, "cluster", run_cluster)
    typer.echo(f"pseudo labels: k={metrics.clusters:.0f}, NMI vs true labels {metrics.nmi:.3f} (diagnostic only)")


@app.command()
def pretrain(
    ctx: typer.Context,
    method: Annotated[Method, typer.Option(help="simclr: random batches; gsimclr: pseudo-label-guided batches.")],
    restart: RestartOption = False,
) -> None:
    """Pretrain SimCLR or G-SimCLR (same loop, different batch sampler).

    Example: gsimclr pretrain --method gsimclr
    """
    from gsimclr.stages.pretrain import pretrain as run_pretrain

    metrics = _run(ctx, "pretrain", run_pretrain, method, restart=restart)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once rather than once per process
        typer.echo(f"{method}: final NT-Xent loss {metrics.loss:.4f}")


@app.command()
def evaluate(
    ctx: typer.Context,
    method: Annotated[
        EvalMethod,
        typer.Option(
            help="A pretrained model, the supervised baseline, or a control: "
            "random_init (untrained network; its fine-tune trains from scratch) or pixels."
        ),
    ],
    restart: RestartOption = False,
) -> None:
    """Linear probes at P1/P2/P3 and 10% fine-tuning, the supervised baseline, or a control.

    Example: gsimclr evaluate --method simclr; gsimclr evaluate --method random_init
    """
    from gsimclr.stages.evaluate import evaluate as run_evaluate

    scores = _run(ctx, "evaluate", run_evaluate, method, restart=restart)
    typer.echo(f"{method}: " + ", ".join(f"{row} {100 * s.test_acc:.2f}%" for row, s in scores.rows.items()))


@app.command()
def compare(ctx: typer.Context) -> None:
    """Write results/results.md and results.csv (paper Tables II and III) and link the runs in MLflow.

    Example: gsimclr compare
    """
    from gsimclr.stages.compare import compare as run_compare

    _run(ctx, "compare", run_compare)
    typer.echo(f"results: {Path('results/results.md').resolve()}")


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
) -> None:
    """Put several studies side by side: each one's guided arm against its own SimCLR arm, paired by seed.

    Example: gsimclr tabulate paper=results/base/results.csv debiased=results/debiased/results.csv
    """
    from gsimclr.reporting.tabulate import tabulate as make_table
    from gsimclr.system.storage import write_text

    with reported_errors():
        table = make_table(studies, metric, representation)
        if output is not None:
            write_text(output, table)
    typer.echo(table, nl=False)


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
    queue: Annotated[
        bool, typer.Option(help="Queue the experiment (start it with `dvc queue start`) instead of running it now.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the dvc command and exit.")] = False,
) -> None:
    """Run a study file through DVC as a named experiment (`dvc exp run -S ...`); params.yaml is not edited by hand.

    Example: gsimclr study pipelines/imagenet5-cpu.yaml -S data.root=/data/imagenet-5-categories
    """
    from gsimclr.pipeline.study import check_data_root, exp_run_command

    with reported_errors():
        command = exp_run_command(file, ctx.obj["params"], set_param, queue, name)
        check_data_root(file, set_param, Path.cwd())
    typer.echo(shlex.join(command))
    if not dry_run:
        raise typer.Exit(subprocess.run(command).returncode)
