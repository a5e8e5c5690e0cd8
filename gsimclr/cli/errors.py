"""How the command line ends: known failures as one line on stderr and their exit code, never a traceback.

Exit codes: 0 ok, 1 runtime failure (diverged training, full disk), 2 bad usage or config, 3 missing
upstream artifact, 130 interrupted (143 terminated). Internal errors keep their traceback.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from gsimclr.system.errors import DiskFullError, TrainingDivergedError, UserError, environment_fault


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
