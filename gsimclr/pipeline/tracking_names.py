"""The tracking store's names, addresses and links, without importing MLflow (the CLI prints them cheaply):
where the project's store lives, the URI in use (credentials redacted when printed), the experiment and
registered-model names, and the links into MLflow's UI that `compare` prints."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Optional
from urllib.parse import quote, urlsplit, urlunsplit

from gsimclr.settings.config import Params
from gsimclr.system.errors import UserError


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


def ui_link(experiment_id: str, view: Optional[str] = None, mode: Optional[str] = None) -> str:
    """The experiment's runs view in MLflow's Model-training mode (MLflow 3 opens an experiment on its GenAI overview
    otherwise), showing the shared view `view` where one is named (the key MLflow's own "Share" button puts in the
    link it copies), as a table or, with `mode="CHART"`, as charts."""
    shared = f"viewStateShareKey={quote(view)}&" if view else ""
    shown = f"compareRunsMode={mode}&" if mode else ""
    return f"{ui_base()}/#/experiments/{experiment_id}/runs?{shared}{shown}workflowType=machine_learning"


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
