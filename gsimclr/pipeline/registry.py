"""What a registered model version says about itself: a description and tags, so that the registry alone tells a
user which method, dataset, seed and machine a version holds, from which commit, and how well it did.

MLflow copies none of a run's tags to the model version it registers; the version gets the run's identifying tags
when it is registered (`describe_version`), and its test accuracy once `compare` has read every evaluation
(`tag_versions_of_run`).
"""

from __future__ import annotations

from typing import Optional

from mlflow.tracking import MlflowClient

from gsimclr.system.machine import cpu_kind

VERSION_TAGS = ("method", "dataset", "seed", "git_commit", "study", "upper_bound")
"""The registering run's tags a model version carries (`upper_bound` only on the oracle bound's)."""


def describe_version(name: str, version: str, run_id: str, description: str) -> None:
    """Give version `version` of `name` its description, the run's identifying tags and the CPU kind it ran on."""
    client = MlflowClient()
    client.update_model_version(name, version, description=description)
    run_tags = client.get_run(run_id).data.tags
    tags = {key: run_tags[key] for key in VERSION_TAGS if key in run_tags} | {"cpu_kind": cpu_kind()}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def tag_versions_of_run(run_id: Optional[str], tags: dict[str, str]) -> None:
    """Add `tags` to every model version that run `run_id` registered. Bookkeeping: a registry that fails here
    costs a warning line, never the comparison."""
    if run_id is None:
        return
    client = MlflowClient()
    try:
        for version in client.search_model_versions(f"run_id = '{run_id}'"):
            for key, value in tags.items():
                client.set_model_version_tag(version.name, version.version, key, value)
    except Exception as exc:  # noqa: BLE001 (MLflow raises many types for an unreachable registry)
        print(f"warning: could not tag the model versions of run {run_id} ({type(exc).__name__})")
