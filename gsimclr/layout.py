"""Where every stage reads and writes: the one place that names the paths `dvc.yaml` declares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

METHODS = ("simclr", "gsimclr")
EVAL_METHODS = (*METHODS, "supervised")


@dataclass(frozen=True)
class Layout:
    root: Path = Path(".")

    def _name(self, stage: str, method: Optional[str]) -> str:
        return f"{stage}_{method}" if method else stage

    @property
    def autoencoder(self) -> Path:
        return self.root / "artifacts" / "autoencoder.pt"

    @property
    def pseudo_labels(self) -> Path:
        return self.root / "artifacts" / "pseudo_labels.csv"

    def pretrained(self, method: str) -> Path:
        return self.root / "artifacts" / f"pretrain_{method}.pt"

    def run_record(self, stage: str, method: Optional[str] = None) -> Path:
        """JSON with the MLflow run id and wall time of a finished stage, read by `compare`."""
        return self.root / "artifacts" / "runs" / f"{self._name(stage, method)}.json"

    def metrics(self, stage: str, method: Optional[str] = None) -> Path:
        return self.root / "metrics" / f"{self._name(stage, method)}.json"

    def plot(self, name: str) -> Path:
        return self.root / "plots" / name

    def resume(self, name: str) -> Path:
        """Resume checkpoint of an unfinished training run (deleted when the stage completes)."""
        return self.root / "checkpoints" / f"{name}.pt"

    @property
    def results(self) -> Path:
        return self.root / "results"
