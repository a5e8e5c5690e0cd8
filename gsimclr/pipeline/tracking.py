"""MLflow conventions in one place (the only module that imports mlflow; names and links: `tracking_names`).

One experiment per dataset, one run per stage x method, tags to filter on, params from the validated
config, per-epoch metrics with `step=epoch`. The default store lives under `mlruns/` of the project
(sqlite for runs, a folder for artifacts); `MLFLOW_TRACKING_URI` points it at a team server instead.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Optional

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import mlflow
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from gsimclr.outputs.plots import close, save_png
from gsimclr.pipeline.registry import describe_version
from gsimclr.pipeline.tracking_names import (
    git_commit,
    metric_key,
    redacted,
    study_name,
    tracking_uri,
)
from gsimclr.pipeline.tracking_store import connect
from gsimclr.settings.config import Params
from gsimclr.settings.declared import flat
from gsimclr.settings.names import ORACLE_LABEL, ORACLE_PREFIX
from gsimclr.system.errors import UserError
from gsimclr.system.storage import atomic_open


class StageRun:
    """The sink every stage output goes through: each call writes the DVC file (where there is one) and
    logs it to the active MLflow run. `NullRun` is the same sink with tracking off."""

    def __init__(self, run_id: Optional[str], experiment_id: Optional[str] = None, metric_prefix: str = "") -> None:
        """`metric_prefix` starts every metric name (the oracle bound's `oracle_bound/`)."""
        self.run_id, self.experiment_id, self.metric_prefix = run_id, experiment_id, metric_prefix

    def log_metrics(self, metrics: dict[str, float], step: Optional[int] = None) -> None:
        """Log to the run; a store that fails mid-stage costs a warning, not the training (the epoch's
        checkpoint, its JSON log line and the DVC metrics still hold every value)."""
        try:
            named = {self.metric_prefix + metric_key(key): float(value) for key, value in metrics.items()}
            mlflow.log_metrics(named, step=step)
        except Exception as exc:  # noqa: BLE001 (MLflow raises many types for an unreachable or locked store)
            print(f"warning: could not log {len(metrics)} metric(s) to MLflow ({type(exc).__name__}); continuing")

    def set_tag(self, key: str, value: str) -> None:
        """Tag the run with something decided at run time (e.g. the precision `auto` resolved to)."""
        mlflow.set_tag(key, value)

    def log_artifact(self, path: Path, folder: Optional[str] = None) -> None:
        """Log a file that already exists as a DVC output (a model, a table)."""
        mlflow.log_artifact(str(path), artifact_path=folder)

    def publish_figure(self, figure: Figure, path: Path) -> None:
        """Save `figure` as the PNG at `path` (a DVC plot), log it under `plots/`, and close it."""
        try:
            save_png(figure, path)
            self._log_figure(figure, f"plots/{path.name}")
        finally:
            close(figure)

    def publish_table(self, table: pd.DataFrame, path: Path) -> None:
        """Write `table` as the CSV at `path` (a DVC output) and log it as an MLflow table."""
        with atomic_open(path) as handle:
            table.to_csv(handle, index=False)
        self._log_table(table, f"{path.stem}.json")

    def _log_figure(self, figure: Figure, name: str) -> None:
        mlflow.log_figure(figure, name)

    def _log_table(self, table: pd.DataFrame, name: str) -> None:
        mlflow.log_table(data=table, artifact_file=name)

    def log_dataset(
        self, name: str, root: Optional[str], digest: str, sizes: dict[str, int], unreadable: int = 0
    ) -> None:
        """The training data as an MLflow dataset input (name, where it lives, content digest, split sizes, and how
        many undecodable image files were left out where there were any)."""
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        with warnings.catch_warnings():
            # MLflow registers its local-file source twice (for the schemes '' and 'file') and then warns, on every
            # local path, that the path "can be interpreted in multiple ways" — both ways being that one source.
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple")
            source = resolve_dataset_source(root) if root else CodeDatasetSource({"loader": name})
        dataset = MetaDataset(source, name=name, digest=digest)  # type: ignore[abstract]  # profile is optional
        tags = {f"{split}_images": str(n) for split, n in sizes.items()}
        if unreadable:
            tags["unreadable_images_left_out"] = str(unreadable)
            mlflow.set_tag("unreadable_images_left_out", str(unreadable))
        mlflow.log_input(dataset, context="training", tags=tags)

    def log_model(
        self,
        model: torch.nn.Module,
        example: np.ndarray,
        registered_name: str,
        saved_at: Path,
        description: str,
        metadata: Optional[dict[str, Any]] = None,
    ) -> None:
        """Log `model` (MLflow's PyTorch flavour, with a signature and an input example) and register it as
        the newest version of `registered_name` (alias `newest`: MLflow reserves `latest`), with `description`
        and the run's identifying tags (`gsimclr.pipeline.registry`).

        The DVC output at `saved_at` is already written: a registry that fails here is a one-line error
        saying so, and re-running the stage logs the model without training again."""
        import mlflow.pytorch  # imported here: it costs every stage's start-up otherwise
        from mlflow.models import infer_signature

        # Logged in the standard memory layout: torch.export saves a channels-last weight (a permuted view of its
        # storage) with the warning "No complete tensor found in the group!", and the layout is a training speed
        # choice of this machine's, not part of the model.
        model = copy.deepcopy(model).cpu().to(memory_format=torch.contiguous_format).eval()
        with torch.no_grad():
            output = model(torch.from_numpy(example)).numpy()
        try:
            info = mlflow.pytorch.log_model(
                model,
                name="model",
                signature=infer_signature(example, output),
                input_example=example,
                registered_model_name=registered_name,
                metadata=metadata,
                pip_requirements=model_requirements(),
                # The signature is given; MLflow's own check would load the model back and compare every package
                # with the environment (3-5 s per stage on a 2-core CPU). tests/ load the registered model instead.
                validate_serving_input=False,
            )
            version = str(info.registered_model_version)
            MlflowClient().set_registered_model_alias(registered_name, "newest", version)
            describe_version(registered_name, version, self.run_id or "", description)
        except Exception as exc:  # noqa: BLE001 (MLflow raises many types for an unreachable store or registry)
            raise UserError(
                f"could not log {registered_name} to the MLflow registry at {redacted(tracking_uri())} "
                f"({type(exc).__name__}); the trained model is saved at {saved_at}: re-run the same command to log it"
            ) from None


class NullRun(StageRun):
    """Tracking off (data-parallel ranks other than 0): the same files are written (`publish_*` are
    inherited), nothing is logged."""

    def __init__(self) -> None:
        super().__init__(None)

    def log_metrics(self, metrics: dict[str, float], step: Optional[int] = None) -> None:
        pass

    def set_tag(self, key: str, value: str) -> None:
        pass

    def log_artifact(self, path: Path, folder: Optional[str] = None) -> None:
        pass

    def _log_figure(self, figure: Figure, name: str) -> None:
        pass

    def _log_table(self, table: pd.DataFrame, name: str) -> None:
        pass

    def log_dataset(
        self, name: str, root: Optional[str], digest: str, sizes: dict[str, int], unreadable: int = 0
    ) -> None:
        pass

    def log_model(self, *args: Any, **kwargs: Any) -> None:
        pass


def _close_killed_runs(experiment_id: str, tags: dict[str, str], keep: Optional[str]) -> None:
    """Mark KILLED the runs of this stage x method x seed that a killed process left RUNNING (other than
    the one this start resumes): one stage x method x seed runs at a time, so a RUNNING one is dead."""
    query = " and ".join(f"tags.{key} = '{tags[key]}'" for key in ("stage", "method", "seed") if key in tags)
    client = MlflowClient()
    try:
        for run in client.search_runs([experiment_id], filter_string=f"{query} and attributes.status = 'RUNNING'"):
            if run.info.run_id != keep:
                client.set_terminated(run.info.run_id, status="KILLED")
    except Exception as exc:  # noqa: BLE001 (bookkeeping only: never fail a stage over it)
        print(f"warning: could not close stale MLflow runs ({type(exc).__name__})")


@contextmanager
def stage_run(
    stage: str,
    params: Params,
    config: dict[str, Any],
    method: Optional[str] = None,
    seed: Optional[int] = None,
    resume_run_id: Optional[str] = None,
    enabled: bool = True,
    oracle: bool = False,
) -> Iterator[StageRun]:
    """Open (or, when resuming a checkpoint, reopen) the MLflow run of one stage x method x seed.

    `config`: the params the stage declares, logged as the run's params and `config.json`.
    `enabled=False` (data-parallel ranks other than 0) yields a `NullRun`. `oracle`: the run trains or evaluates
    the oracle bound (`guidance.labels: oracle`): its name, tags, description and every metric name say so.
    """
    if not enabled:
        yield NullRun()
        return
    experiment_id = connect(params)
    tags = {
        "stage": stage,
        "dataset": params.data.name,
        "git_commit": git_commit(),
        "seed": str(seed) if seed is not None else ",".join(map(str, params.seeds)),
        "study": study_name(),
    }
    if method:
        tags["method"] = method
    run_name = "-".join([stage, *([method] if method else []), *([f"seed{seed}"] if seed is not None else [])])
    if oracle:  # the upper bound is never mistaken for a method, in the run list or in a metric chart
        tags |= {"guidance.labels": "oracle", "upper_bound": ORACLE_LABEL, "mlflow.note.content": ORACLE_LABEL}
        run_name = f"{ORACLE_PREFIX}-{run_name}"
    if resume_run_id is not None:
        try:
            MlflowClient().get_run(resume_run_id)
        except Exception:  # noqa: BLE001 (the old run was deleted: open a new one rather than fail)
            resume_run_id = None
    _close_killed_runs(experiment_id, tags, keep=resume_run_id)
    with mlflow.start_run(run_id=resume_run_id, experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        if resume_run_id is None:
            mlflow.log_params({**flat(config), **({"seed": seed} if seed is not None else {})})
            mlflow.log_dict(config, "config.json")
        yield StageRun(run.info.run_id, experiment_id, metric_prefix=f"{ORACLE_PREFIX}/" if oracle else "")


def model_requirements() -> list[str]:
    """What a logged model needs: torch by its public version, without the local build tag (`2.14.1+cu130`), so a
    CPU-only or a CUDA build of that version loads it without MLflow's mismatch warning; and this package."""
    return [f"torch=={torch.__version__.split('+')[0]}", f"gsimclr=={package_version('gsimclr')}"]


def link_runs(parent_run_id: Optional[str], child_run_ids: list[str]) -> None:
    """Nest this study's runs under its comparison run, so the UI shows one study as one tree.

    A run another study already holds (a DVC experiment that reused a cached stage: the SimCLR arm, the
    autoencoder, the controls) is never moved: it is tagged `used_by.<study>` with this comparison's run
    id instead, and the comparison lists it in its `shared_runs` tag."""
    if parent_run_id is None:
        return
    client = MlflowClient()
    study, shared = study_name(), []
    for child in child_run_ids:
        try:
            parent = client.get_run(child).data.tags.get("mlflow.parentRunId")
            owner = client.get_run(parent).data.tags.get("study") if parent else None
            if parent is None or owner == study:
                client.set_tag(child, "mlflow.parentRunId", parent_run_id)
            else:
                client.set_tag(child, f"used_by.{study}", parent_run_id)
                shared.append(child)
        except Exception as exc:  # noqa: BLE001 (a run deleted from the store should not fail the comparison)
            print(f"warning: could not link MLflow run {child}: {type(exc).__name__}")
    if shared:
        client.set_tag(parent_run_id, "shared_runs", ",".join(shared))
