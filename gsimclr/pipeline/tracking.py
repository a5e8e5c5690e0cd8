"""MLflow conventions in one place (the only module that imports mlflow).

One experiment per dataset, one run per stage x method, tags to filter on, params from the validated
config, per-epoch metrics with `step=epoch`. The default store lives under `mlruns/` of the project
(sqlite for runs, a folder for artifacts); `MLFLOW_TRACKING_URI` points it at a team server instead.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote, urlsplit, urlunsplit

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import mlflow
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from gsimclr.outputs.plots import close, save_png
from gsimclr.settings.config import Params
from gsimclr.settings.declared import flat
from gsimclr.system.errors import UserError, environment_fault
from gsimclr.system.storage import atomic_open


def project_root() -> Path:
    """The project directory, also from inside `dvc exp run --temp` copies under `.dvc/tmp/exps/`."""
    cwd = Path.cwd().resolve()
    for parent in cwd.parents:
        if parent.name == "exps" and parent.parent.name == "tmp" and parent.parent.parent.name == ".dvc":
            return parent.parent.parent.parent
    return cwd


def local_store() -> Path:
    """The project's own MLflow store folder (`mlruns/`)."""
    return project_root() / "mlruns"


def local_uri() -> str:
    """The project's own store: sqlite under `mlruns/`."""
    return f"sqlite:///{local_store() / 'mlflow.db'}"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set (a malformed one is a `UserError`), else the project's sqlite store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or local_uri()
    try:
        _ = urlsplit(uri).port  # parses the host part: an unbalanced IPv6 bracket or a bad port raises
    except ValueError as exc:
        raise UserError(f"MLFLOW_TRACKING_URI={redacted(uri)} is not a valid URI ({exc})") from None
    return uri


def redacted(uri: str) -> str:
    """`uri` with its password (if any) replaced by `***`: fit to print or to write into a report.

    >>> redacted("postgresql://user:secret@db:5432/mlflow")
    'postgresql://user:***@db:5432/mlflow'
    """
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:  # e.g. an unbalanced IPv6 bracket: hide everything that could hold credentials
        return re.sub(r"//[^/]*@", "//***@", uri)
    if password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def metric_key(name: str) -> str:
    """A metric name MLflow accepts (alphanumerics, `_ - . /` and spaces), e.g. for a class folder called `a (b)`.

    >>> metric_key("linear_P3/test_acc_a (b)")
    'linear_P3/test_acc_a _b_'
    """
    return re.sub(r"[^\w\-. /]", "_", name)


LOCAL_UI = "http://127.0.0.1:5000"


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def ui_command() -> str:
    """How to open the runs: for the project's own store, the `mlflow ui` command to run in the project
    folder (bound to localhost; a relative store path, so it holds on any clone); for a tracking
    server, its address."""
    uri = tracking_uri()
    if _is_server(uri):
        return f"open {redacted(uri)}"
    if uri == local_uri():
        uri = f"sqlite:///{(local_store() / 'mlflow.db').relative_to(project_root()).as_posix()}"
    return f"mlflow ui --backend-store-uri {redacted(uri)} --host 127.0.0.1 --port 5000"


def ui_base() -> str:
    """Where the MLflow UI of the tracking store is served (credentials redacted)."""
    uri = tracking_uri()
    return redacted(uri).rstrip("/") if _is_server(uri) else LOCAL_UI


def ui_link(experiment_id: str) -> str:
    """The experiment's runs view (MLflow 3 opens an experiment on its GenAI overview otherwise)."""
    return f"{ui_base()}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def comparison_link(experiment_id: str, run_ids: Sequence[str]) -> str:
    """MLflow's run comparison page with `run_ids` side by side, one column each, their params and metrics as
    rows: the view a study's question asks for, opened without a click (the route MLflow's own "Compare"
    button builds: `#/compare-runs?runs=[...]&experiments=[...]`)."""
    runs = quote(json.dumps(list(run_ids), separators=(",", ":")))
    experiments = quote(json.dumps([experiment_id], separators=(",", ":")))
    return f"{ui_base()}/#/compare-runs?runs={runs}&experiments={experiments}"


def ui_hint(link: Optional[str] = None) -> str:
    """One line a person can follow: the command (if any) and `link` (default: the UI's home)."""
    command = ui_command()
    if command.startswith("open "):
        return f"open {link or command.removeprefix('open ')}"
    return f"`{command}` (in the project folder), then open {link or LOCAL_UI}"


def study_name() -> str:
    """The DVC experiment a run belongs to (`gsimclr study` and `dvc exp run -n` set DVC_EXP_NAME);
    `workspace` for plain `dvc repro` and direct commands."""
    return os.environ.get("DVC_EXP_NAME") or "workspace"


def registered_model_name(params: Params, what: str) -> str:
    """The registry entry of a model: one per dataset and method (or the autoencoder)."""
    return f"{experiment_name(params)}-{what}"


def experiment_name(params: Params) -> str:
    """One MLflow experiment per dataset (and ImageFolder directory)."""
    data = params.data
    suffix = f"-{Path(data.root).name}" if data.name == "imagefolder" and data.root else ""
    return f"gsimclr-{data.name}{suffix}"


def git_commit() -> str:
    """The checked-out commit, tagged on every run ("unknown" outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


SQLITE_ATTEMPTS = 5


@contextmanager
def _sqlite_store_lock(uri: str) -> Iterator[None]:
    """Serialise processes' first connection to one sqlite store (MLflow creates its tables then, and
    two processes doing it at once fail with OperationalError); other stores need no lock."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): rely on the retries alone
        yield
        return
    lock = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
"""Marks an experiment as model training, so MLflow 3's UI shows its runs rather than a GenAI overview."""


ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)
"""Where MLflow's sqlite schema keeps absolute artifact locations (it has no relative ones)."""


def relocate_artifacts(database: Path, old: str, new: str) -> None:
    """Point every artifact location under the artifact root `old` at `new` (file URIs and plain paths), so a
    copied or moved project writes and reads artifacts in its own `mlruns/artifacts/`, never the original's."""
    prefixes = [(old, new), (old.removeprefix("file://"), new.removeprefix("file://"))]
    with closing(sqlite3.connect(database)) as connection, connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, column in ARTIFACT_COLUMNS:
            if table not in tables:
                continue
            for before, after in prefixes:
                connection.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
                    (after, len(before) + 1, len(before), before),
                )


def store_problem(exc: BaseException) -> str:
    """What is wrong with a store that failed, in words (`errors.environment_fault`), else `not reachable`."""
    return environment_fault(exc) or f"not reachable ({type(exc).__name__})"


def _experiment_id(name: str, location: Optional[str], uri: str, attempts: int) -> str:
    """The experiment's id, created (as a model-training experiment) if missing; in the project's own store
    (`location` given) a store copied from elsewhere is first relocated to this project. A store that keeps
    failing is a one-line `UserError` saying what is wrong with it."""
    for attempt in range(1, attempts + 1):
        try:
            experiment = mlflow.get_experiment_by_name(name)
            if experiment is not None:
                if location is not None and experiment.artifact_location != location:
                    old_root = experiment.artifact_location.rsplit("/", 1)[0]
                    relocate_artifacts(local_store() / "mlflow.db", old_root, location.rsplit("/", 1)[0])
                if experiment.tags.get(EXPERIMENT_KIND[0]) is None:
                    MlflowClient().set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
                return experiment.experiment_id
            return mlflow.create_experiment(name, artifact_location=location, tags=dict([EXPERIMENT_KIND]))
        except Exception as exc:  # noqa: BLE001 (any failure here means the store is unusable; say which one)
            if attempt == attempts:
                raise UserError(f"MLflow tracking store {redacted(uri)}: {store_problem(exc)}") from None
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _connect(params: Params) -> str:
    """Point MLflow at the store and make sure the experiment exists; fail fast if unreachable."""
    uri = tracking_uri()
    # The project's own store keeps artifacts beside it (also from `dvc exp run --temp` copies). Decided
    # from the URI, not from MLFLOW_TRACKING_URI: mlflow.set_tracking_uri exports that variable.
    own_store = uri == local_uri()
    if own_store:
        (local_store() / "artifacts").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    name = experiment_name(params)
    saved = {key: os.environ.get(key) for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="10")
    location = (local_store() / "artifacts" / name).as_uri() if own_store else None
    # Stages started at the same moment on a fresh sqlite store race to create its tables and the
    # experiment: the lock serialises that, and a store that still fails is retried a few times.
    attempts = SQLITE_ATTEMPTS if uri.startswith("sqlite:") else 1
    try:
        with _sqlite_store_lock(uri):
            return _experiment_id(name, location, uri, attempts)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class StageRun:
    """The sink every stage output goes through: each call writes the DVC file (where there is one) and
    logs it to the active MLflow run. `NullRun` is the same sink with tracking off."""

    def __init__(self, run_id: Optional[str], experiment_id: Optional[str] = None) -> None:
        self.run_id, self.experiment_id = run_id, experiment_id

    def log_metrics(self, metrics: dict[str, float], step: Optional[int] = None) -> None:
        """Log to the run; a store that fails mid-stage costs a warning, not the training (the epoch's
        checkpoint, its JSON log line and the DVC metrics still hold every value)."""
        try:
            mlflow.log_metrics({metric_key(key): float(value) for key, value in metrics.items()}, step=step)
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

    def log_dataset(self, name: str, root: Optional[str], digest: str, sizes: dict[str, int]) -> None:
        """The training data as an MLflow dataset input (name, where it lives, content digest, split sizes)."""
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        source = resolve_dataset_source(root) if root else CodeDatasetSource({"loader": name})
        dataset = MetaDataset(source, name=name, digest=digest)  # type: ignore[abstract]  # profile is optional
        mlflow.log_input(dataset, context="training", tags={f"{split}_images": str(n) for split, n in sizes.items()})

    def log_model(self, model: torch.nn.Module, example: np.ndarray, registered_name: str, saved_at: Path) -> None:
        """Log `model` (MLflow's PyTorch flavour, with a signature and an input example) and register it as
        the newest version of `registered_name` (alias `newest`: MLflow reserves `latest`).

        The DVC output at `saved_at` is already written: a registry that fails here is a one-line error
        saying so, and re-running the stage logs the model without training again."""
        import mlflow.pytorch  # imported here: it costs every stage's start-up otherwise
        from mlflow.models import infer_signature

        model = copy.deepcopy(model).cpu().eval()
        with torch.no_grad():
            output = model(torch.from_numpy(example)).numpy()
        try:
            info = mlflow.pytorch.log_model(
                model,
                name="model",
                signature=infer_signature(example, output),
                input_example=example,
                registered_model_name=registered_name,
                pip_requirements=[f"torch=={torch.__version__}", f"gsimclr=={package_version('gsimclr')}"],
                # The signature is given; MLflow's own check would load the model back and compare every package
                # with the environment (3-5 s per stage on a 2-core CPU). tests/ load the registered model instead.
                validate_serving_input=False,
            )
            MlflowClient().set_registered_model_alias(registered_name, "newest", str(info.registered_model_version))
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

    def log_dataset(self, name: str, root: Optional[str], digest: str, sizes: dict[str, int]) -> None:
        pass

    def log_model(self, model: torch.nn.Module, example: np.ndarray, registered_name: str, saved_at: Path) -> None:
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
) -> Iterator[StageRun]:
    """Open (or, when resuming a checkpoint, reopen) the MLflow run of one stage x method x seed.

    `config`: the params the stage declares, logged as the run's params and `config.json`.
    `enabled=False` (data-parallel ranks other than 0) yields a `NullRun`.
    """
    if not enabled:
        yield NullRun()
        return
    experiment_id = _connect(params)
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
        yield StageRun(run.info.run_id, experiment_id)


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
