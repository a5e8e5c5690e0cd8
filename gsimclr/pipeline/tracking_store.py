"""The MLflow store a run is logged to: the experiment of a dataset created or found once (a race between two
stages starting at once retried), a project copied elsewhere re-pointed at its own artifacts, and a store
that cannot be used named in one line (corrupt, locked, read-only, full)."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Optional

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import mlflow
from mlflow.tracking import MlflowClient

from gsimclr.pipeline.tracking_names import experiment_name, local_store, local_uri, redacted, tracking_uri
from gsimclr.settings.config import Params
from gsimclr.system.errors import UserError, environment_fault

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


def connect(params: Params) -> str:
    """Point MLflow at the store and make sure the experiment exists; fail fast if unreachable."""
    uri = tracking_uri()
    # The project's own store keeps artifacts beside it (also from `dvc exp run --temp` copies). Decided
    # from the URI, not from MLFLOW_TRACKING_URI: mlflow.set_tracking_uri exports that variable.
    own_store = uri == local_uri()
    if own_store:
        (local_store() / "artifacts").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    # A fresh store's first connection logs "Creating initial MLflow database tables..." at INFO: the store's own
    # bookkeeping, nothing a user acts on, in the middle of a stage's log (its warnings still print).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
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
