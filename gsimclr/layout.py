"""Where every stage reads and writes: the one place that names the paths `dvc.yaml` declares.

Everything a stage produces lives under a per-seed folder (`artifacts/seed0/...`), so the seeds of a
study are independent DVC stages; only `compare` (across seeds) writes to `results/`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

METHODS = ("simclr", "gsimclr")
CONTROLS = ("random_init", "pixels")
"""What every pretrained representation must beat: the same network untrained, and raw pixels."""
EVAL_METHODS = (*METHODS, "supervised", *CONTROLS)


@dataclass(frozen=True)
class Layout:
    root: Path = Path(".")
    seed: Optional[int] = None

    def for_seed(self, seed: int) -> "Layout":
        return replace(self, seed=seed)

    def _seeded(self, kind: str) -> Path:
        if self.seed is None:
            raise ValueError(f"{kind} paths are per seed: use Layout.for_seed")
        return self.root / kind / f"seed{self.seed}"

    @staticmethod
    def _name(stage: str, method: Optional[str]) -> str:
        return f"{stage}_{method}" if method else stage

    @property
    def autoencoder(self) -> Path:
        return self._seeded("artifacts") / "autoencoder.pt"

    @property
    def pseudo_labels(self) -> Path:
        return self._seeded("artifacts") / "pseudo_labels.csv"

    def pretrained(self, method: str) -> Path:
        return self._seeded("artifacts") / f"pretrain_{method}.pt"

    def run_record(self, stage: str, method: Optional[str] = None) -> Path:
        """JSON with the MLflow run id and wall time of a finished stage, read by `compare`."""
        return self._seeded("runs") / f"{self._name(stage, method)}.json"

    def metrics(self, stage: str, method: Optional[str] = None) -> Path:
        return self._seeded("metrics") / f"{self._name(stage, method)}.json"

    def plot(self, name: str) -> Path:
        return self._seeded("plots") / name

    def resume(self, name: str) -> Path:
        """Resume checkpoint of an unfinished training run (deleted when the stage completes)."""
        return self._seeded("checkpoints") / f"{name}.pt"

    @property
    def results(self) -> Path:
        return self.root / "results"

