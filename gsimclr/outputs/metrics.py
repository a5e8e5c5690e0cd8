"""Typed metric records: what the stages write to `metrics/` (DVC metrics files) and `compare` reads,
and the rows of `results.csv` that `compare` writes and `tabulate` reads.

One naming scheme, one unit (README, "Metric names"):

- A stage's final metrics have the same keys in its DVC metrics file and in its MLflow run:
  `<row>/<quantity>` for evaluation rows (`linear_P3/test_acc`, `finetune/test_acc/class2`,
  `finetune/best_epoch`), plain names for the other stages (`loss`, `nmi`, `knn_val_acc`).
- Per-epoch curves exist only in MLflow (and the JSON-lines epoch logs), under `epoch/<quantity>`
  (`epoch/loss`, `epoch/knn_val_acc`, `finetune/epoch/val_acc`), so a curve never shadows a final value.
- Every accuracy is a fraction in [0, 1] wherever it is stored (metrics files, MLflow, results.csv);
  only the Markdown tables and figures print percentages, as the paper's tables do.
"""

from __future__ import annotations

import csv
import io
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Optional, TypeVar

from gsimclr.system.errors import UserError
from gsimclr.system.inputs import read_text
from gsimclr.system.storage import read_json, write_csv, write_json

Flat = TypeVar("Flat", bound="FlatMetrics")


@dataclass(frozen=True, kw_only=True)
class FlatMetrics:
    """A stage's metrics file as one flat record: a diagnostic that does not apply (None) is left out of the file."""

    def to_json(self) -> dict[str, float]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def read(cls: type[Flat], path: Path, what: str) -> Flat:
        """The record in `path`, keeping only known keys; a missing required key is a `UserError`."""
        raw = read_json(path, what)
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{key: value for key, value in raw.items() if key in known})
        except TypeError:
            missing = sorted(f.name for f in fields(cls) if f.default is MISSING and f.name not in raw)
            raise UserError(
                f"{what} lacks {', '.join(missing)} (written by an older gsimclr? re-run its stage)"
            ) from None


@dataclass(frozen=True)
class RowScores:
    """One evaluated row: a linear probe on one representation, or a classifier trained end to end."""

    test_acc: float
    test_balanced_acc: float
    test_acc_by_class: tuple[float, ...]
    """Recall of every class, in the order of the dataset's class names."""
    val_acc: float
    """The validation accuracy that selected this row's model (its C, or its epoch)."""
    c: Optional[float] = None
    """Linear probes: the selected inverse regularisation strength."""
    best_epoch: Optional[int] = None
    """Trained rows: the epoch selected on the validation split."""
    labelled_images: Optional[int] = None
    """Trained rows: every label the row used (its training images and the validation images)."""

    def to_json(self, row: str) -> dict[str, float]:
        out = {
            f"{row}/test_acc": self.test_acc,
            f"{row}/test_balanced_acc": self.test_balanced_acc,
            **{f"{row}/test_acc/class{c}": acc for c, acc in enumerate(self.test_acc_by_class)},
            f"{row}/val_acc": self.val_acc,
        }
        optional = {
            f"{row}/C": self.c,
            f"{row}/best_epoch": self.best_epoch,
            f"{row}/labelled_images": self.labelled_images,
        }
        return out | {key: value for key, value in optional.items() if value is not None}

    @classmethod
    def from_json(cls, raw: dict[str, float], row: str) -> RowScores:
        by_class: list[float] = []
        while f"{row}/test_acc/class{len(by_class)}" in raw:
            by_class.append(raw[f"{row}/test_acc/class{len(by_class)}"])
        best_epoch, labelled = raw.get(f"{row}/best_epoch"), raw.get(f"{row}/labelled_images")
        return cls(
            test_acc=raw[f"{row}/test_acc"],
            test_balanced_acc=raw[f"{row}/test_balanced_acc"],
            test_acc_by_class=tuple(by_class),
            val_acc=raw[f"{row}/val_acc"],
            c=raw.get(f"{row}/C"),
            best_epoch=int(best_epoch) if best_epoch is not None else None,
            labelled_images=int(labelled) if labelled is not None else None,
        )


@dataclass(frozen=True)
class EvaluationMetrics:
    """Every row one `evaluate --method` call scored: `linear_P1`..`linear_P3`, `linear_pixels`,
    `finetune` or `supervised`."""

    rows: dict[str, RowScores]

    def to_json(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for row, scores in self.rows.items():
            out |= scores.to_json(row)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, float], what: str) -> EvaluationMetrics:
        names = [key.removesuffix("/test_acc") for key in raw if key.endswith("/test_acc")]
        try:
            return cls({row: RowScores.from_json(raw, row) for row in names})
        except KeyError as exc:
            raise UserError(f"{what} lacks {exc.args[0]} (written by an older gsimclr? re-run its stage)") from None

    def write(self, path: Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def read(cls, path: Path, what: str) -> EvaluationMetrics:
        return cls.from_json(read_json(path, what), what)


@dataclass(frozen=True, kw_only=True)
class PretrainMetrics(FlatMetrics):
    """The last pretraining epoch: loss, false negatives per batch and, where measured, kNN accuracy
    and the pseudo labels' quality (true labels only measure)."""

    loss: float
    same_class_pairs_per_batch: Optional[float] = None
    """None where the images have no classes (an unlabelled pool); so are all the diagnostics below but the kNN
    monitor's, which reads the labelled training split."""
    epochs: int
    processes: int
    same_class_negatives_per_batch: Optional[float] = None
    false_negatives_removed: Optional[float] = None
    distinct_pseudo_labels_per_batch: Optional[float] = None
    pseudo_label_nmi: Optional[float] = None
    pseudo_label_purity: Optional[float] = None
    pseudo_pair_precision: Optional[float] = None
    knn_val_acc: Optional[float] = None


@dataclass(frozen=True, kw_only=True)
class ClusterMetrics(FlatMetrics):
    """k-means pseudo labels against the true classes, and one epoch of random vs guided batches."""

    inertia: float
    clusters: float
    size_min: float
    size_max: float
    size_mean: float
    nmi: Optional[float] = None
    """None, as every true-class diagnostic here, where the clustered images have no classes (an unlabelled pool)."""
    ari: Optional[float] = None
    purity: Optional[float] = None
    min_same_class_pairs: Optional[float] = None
    """The fewest same-class pairs per batch any partition of an epoch allows (perfect guidance)."""
    random_distinct_pseudo_labels: float
    random_same_pseudo_pairs: float
    random_same_class_pairs: Optional[float] = None
    guided_distinct_pseudo_labels: float
    guided_same_pseudo_pairs: float
    guided_same_class_pairs: Optional[float] = None


@dataclass(frozen=True)
class ResultRow:
    """One test accuracy (a fraction) of `results.csv`: a table cell for one seed, with the paper's figure
    (also a fraction)."""

    table: str
    metric: str
    """accuracy, or balanced_accuracy (mean per-class accuracy, long-tailed studies only)."""
    method: str
    representation: str
    seed: int
    test_acc: float
    paper: Optional[float] = None
    guided_by: str = ""
    """The G-SimCLR arm's label source where it is not the paper's autoencoder (`network`, `oracle`; empty for
    other rows, the paper's arm and older tables): `oracle` marks the upper bound that read the true labels,
    which no table may call a winning method."""


RESULT_COLUMNS = [f.name for f in fields(ResultRow)]


def epoch_curves(metrics: dict[str, float], prefix: str = "") -> dict[str, float]:
    """One epoch's metrics under their MLflow curve names: `<prefix>epoch/<name>`."""
    return {f"{prefix}epoch/{key}": value for key, value in metrics.items()}


def write_results(path: Path, rows: list[ResultRow]) -> None:
    """The table; the `guided_by` column only where an arm has a label source other than the paper's, so the
    paper's studies keep the columns they always had."""
    columns = [c for c in RESULT_COLUMNS if c != "guided_by" or any(row.guided_by for row in rows)]
    write_csv(
        path, [{key: value for key, value in asdict(row).items() if key in columns} for row in rows], columns=columns
    )


def read_results(path: Path) -> list[ResultRow]:
    """The rows of a results.csv; a missing, non-UTF-8 or malformed file (another shape, a short row, an empty or
    non-finite accuracy) is a one-line `UserError` naming the line: a table with a hole never yields a verdict."""
    if not path.exists():
        raise UserError(f"results table not found: {path} (run `gsimclr compare` or `dvc repro` first)")
    reader = csv.DictReader(io.StringIO(read_text(path, "results table"), newline=""))
    needed = set(RESULT_COLUMNS) - {"paper", "table", "guided_by"}
    if not needed <= set(reader.fieldnames or []):
        raise UserError(f"{path}: not a gsimclr results.csv (needs columns {', '.join(sorted(needed))})")
    rows = []
    for row in reader:
        line = reader.line_num
        if None in row.values() or None in row:
            raise UserError(
                f"{path}, line {line}: the row has {'fewer' if None in row.values() else 'more'} cells than the header"
            )
        try:
            result = ResultRow(
                table=row.get("table") or "",
                metric=row["metric"],
                method=row["method"],
                representation=row["representation"],
                seed=int(row["seed"]),
                test_acc=float(row["test_acc"]),
                paper=float(row["paper"]) if row.get("paper") else None,
                guided_by=row.get("guided_by") or "",
            )
        except ValueError as exc:
            raise UserError(f"{path}, line {line}: not a gsimclr results row ({exc})") from None
        if not 0.0 <= result.test_acc <= 1.0:  # NaN fails this too
            raise UserError(f"{path}, line {line}: test_acc={row['test_acc']} is not an accuracy in [0, 1]")
        rows.append(result)
    return rows
