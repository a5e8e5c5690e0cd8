"""Where every stage reads and writes: the one place that names the paths `dvc.yaml` declares.

Everything a stage produces lives under a per-seed folder (`artifacts/seed0/...`), so the seeds of a
study are independent DVC stages; only `compare` (across seeds) writes to `results/`. Every file has its
own typed method: no caller builds a filename, so a renamed output changes here and in `dvc.yaml` only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Optional

from gsimclr.settings.names import Classifier, EvalMethod, Method, Stage

MetricsName = Literal["autoencoder", "cluster", "pretrain", "evaluate", "screen"]
ImageFormat = Literal["csv", "png"]
ResultFigure = Literal["accuracy_by_seed", "pretrain_loss", "knn_monitor"]
ClusterFigure = Literal["cluster_sizes", "cluster_tsne"]


@dataclass(frozen=True)
class TrainingFiles:
    """A training run's resume checkpoint (deleted when its stage completes) and its per-epoch JSON-lines
    log (kept: the record of every epoch, also of interrupted and resumed runs)."""

    checkpoint: Path
    log: Path


@dataclass(frozen=True)
class Layout:
    """Paths of one project (`root`), per seed once `for_seed` scoped it."""

    root: Path = Path(".")
    seed: Optional[int] = None

    def for_seed(self, seed: int) -> Layout:
        """The same project's paths, scoped to one seed's folders."""
        return replace(self, seed=seed)

    def _seeded(self, kind: str) -> Path:
        if self.seed is None:
            raise ValueError(f"{kind} paths are per seed: use Layout.for_seed")
        return self.root / kind / f"seed{self.seed}"

    # The decoded dataset (the `prepare` stage's output, shared by every seed)

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    def prepared_data(self, key: str) -> Path:
        """The folder of one dataset at one resolution (`prepared.dataset_key`)."""
        return self.prepared / key

    def source_stamp(self, key: str) -> Path:
        """The dataset root's fingerprint against its file listing (`prepared.confirmed_fingerprint`): a cache
        beside, not inside, the DVC output, so a remount's new file times never change the output's hash."""
        return self.root / ".gsimclr" / "source-stamps" / f"{key}.json"

    @property
    def stage_logs(self) -> Path:
        """What each stage printed when `gsimclr repro` ran it (one `<stage>.log` per stage, latest run)."""
        return self.root / ".gsimclr" / "logs"

    # Artifacts (DVC-cached outputs the next stage reads)

    @property
    def autoencoder(self) -> Path:
        """The trained denoising autoencoder (stage 1)."""
        return self._seeded("artifacts") / "autoencoder.pt"

    @property
    def pseudo_labels(self) -> Path:
        """The k-means pseudo label of every training image (stage 2)."""
        return self._seeded("artifacts") / "pseudo_labels.csv"

    def pretrained(self, method: Method) -> Path:
        """The pretrained SimCLR network of one method (stage 3)."""
        return self._seeded("artifacts") / f"pretrain_{method}.pt"

    # Stage records and metrics (what `compare` reads)

    def run_record(self, stage: Stage, method: Optional[EvalMethod] = None) -> Path:
        """JSON with the MLflow run id and wall time of a finished stage."""
        return self._seeded("runs") / f"{stage}{f'_{method}' if method else ''}.json"

    def metrics(self, name: MetricsName, method: Optional[EvalMethod] = None) -> Path:
        """A stage's metrics (a DVC metrics file)."""
        return self._seeded("metrics") / f"{name}{f'_{method}' if method else ''}.json"

    # Plots (DVC plots of one seed)

    def autoencoder_loss(self, fmt: ImageFormat) -> Path:
        """The autoencoder's train/validation loss curve (csv) or its figure (png)."""
        return self._seeded("plots") / f"autoencoder_loss.{fmt}"

    def cluster_figure(self, name: ClusterFigure) -> Path:
        """A diagnostic figure of the pseudo labels."""
        return self._seeded("plots") / f"{name}.png"

    def pretrain_loss(self, method: Method, fmt: ImageFormat) -> Path:
        """A method's NT-Xent loss curve (csv) or its figure (png)."""
        return self._seeded("plots") / f"pretrain_{method}_loss.{fmt}"

    def pretrain_knn(self, method: Method) -> Path:
        """The kNN monitor's curve (header only when the monitor was off)."""
        return self._seeded("plots") / f"pretrain_{method}_knn.csv"

    # Training runs (resume checkpoints and epoch logs)

    def _training(self, name: str) -> TrainingFiles:
        folder = self._seeded("checkpoints")
        return TrainingFiles(folder / f"{name}.pt", folder / f"{name}.log.jsonl")

    @property
    def autoencoder_training(self) -> TrainingFiles:
        """Checkpoint and epoch log of the autoencoder's training."""
        return self._training("autoencoder")

    def pretrain_training(self, method: Method) -> TrainingFiles:
        """Checkpoint and epoch log of a method's pretraining."""
        return self._training(f"pretrain_{method}")

    def classifier_training(self, method: EvalMethod, classifier: Classifier) -> TrainingFiles:
        """Checkpoint and epoch log of a classifier `evaluate` trains for a method."""
        return self._training(f"evaluate_{method}_{classifier}")

    # Results of `compare` (across seeds)

    @property
    def results(self) -> Path:
        """The folder of `compare`'s report."""
        return self.root / "results"

    @property
    def results_md(self) -> Path:
        """The report: Tables II and III with controls, per seed, diagnostics and provenance."""
        return self.results / "results.md"

    @property
    def results_csv(self) -> Path:
        """Every test accuracy of the report, one row per (table, method, representation, seed)."""
        return self.results / "results.csv"

    @property
    def results_metrics(self) -> Path:
        """The pooled means, paired differences and intervals (a DVC metrics file, fractions)."""
        return self.results / "metrics.json"

    def result_figure(self, name: ResultFigure) -> Path:
        """A figure of the report."""
        return self.results / f"{name}.png"
