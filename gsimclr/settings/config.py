"""Validated configuration: one pydantic model per `params.yaml` section.

DVC's `exp run -S` accepts any key silently, so every model forbids unknown keys and checks ranges:
a typo must fail loudly before hours of training, not be ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from gsimclr.method.losses import LABELLED_LOSSES, FalseNegatives


def _check_crop_scale(scale: tuple[float, float]) -> tuple[float, float]:
    if not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ValueError("crop_scale must satisfy 0 < low <= high <= 1")
    return scale


MAX_SEED = 2**31 - 1
"""Seeds are offset per process rank and epoch and then seed numpy, scikit-learn and torch; scikit-learn takes
at most 2^32 - 1, so seeds stay below 2^31."""
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]

CropScale = Annotated[tuple[float, float], AfterValidator(_check_crop_scale)]
"""Area range (low, high) of a random resized crop, as a share of the image."""


class Section(BaseModel):
    # allow_inf_nan=False: `temperature: .inf` or `lr: .nan` would otherwise pass every range check
    # and train on a flat loss.
    """A params section: unknown keys, NaN and infinity are errors, and values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataConfig(Section):
    """Which dataset, where it lives, the input resolution and how the training data is split."""

    name: Literal["digits", "cifar10", "imagefolder"] = "digits"
    root: Optional[str] = None
    """Dataset directory (cifar10: where `cifar-10-batches-py` lives; imagefolder: holds train/ and test/)."""
    download: bool = False
    """cifar10 only: let torchvision download the dataset into `root` when it is missing."""
    image_size: int = Field(default=16, ge=4, le=1024)
    """The network's input: image_size x image_size (digits are 8x8 natively); above 1024 px a typo
    (e.g. 2240) would only surface as an out-of-memory error after decoding."""
    stored_size: Optional[int] = Field(default=None, ge=4, le=1024)
    """Side at which `prepare` stores the images (default: image_size). Larger, e.g. image_size / 0.875
    (ImageNet's 256 for 224), gives random-resized crops real pixels to sample before they are resized
    to image_size; every pass without a crop (features, validation, test) sees the central image_size crop."""
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    """Share of the training split held out for model selection (never the test split)."""
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    """digits only: it has no official test split, so one is carved once with the seed."""
    paper_reference: Optional[Literal["cifar10", "imagenet_subset"]] = None
    """Which of the paper's result columns to print beside ours (only when the dataset matches)."""
    imbalance_ratio: float = Field(default=1.0, ge=1.0)
    """Long-tailed training split (the setting G-SimCLR is motivated by): class c keeps
    n_min * ratio^(-c/(C-1)) images, an exponential profile from the smallest class size down to
    1/ratio of it. 1 keeps the split as it is. The test split is never touched."""
    imbalance_seed: NonNegativeInt = 0
    """Which images the long-tailed split keeps; fixed across `seeds`, so every run sees the same data."""
    on_unreadable: Literal["skip", "error"] = "skip"
    """imagefolder: an image that cannot be decoded (zero bytes, truncated, a decompression bomb, text named .png)
    is left out and counted -- in the prepared metadata, every stage's MLflow run and results.md -- or, with
    `error`, stops `prepare` with one line naming it."""
    pool: Optional[str] = None
    """A folder of unlabelled images (any depth, no class folders needed) that `autoencoder`, `cluster` and
    `pretrain` train on; the labelled dataset (`name`, `root`: may be small) then serves only `evaluate`, the kNN
    monitor and the controls. None: every stage trains on the labelled training split. The diagnostics that need
    true labels (NMI, same-class pairs per batch) are not measured on a pool."""

    @property
    def stored_side(self) -> int:
        """Side of the stored (prepared) images."""
        return self.stored_size or self.image_size

    @model_validator(mode="after")
    def _stored_not_smaller(self) -> DataConfig:
        if self.stored_side < self.image_size:
            raise ValueError(f"data.stored_size={self.stored_size} is smaller than data.image_size={self.image_size}")
        return self

    @model_validator(mode="after")
    def _root_needed(self) -> DataConfig:
        if self.name in ("cifar10", "imagefolder") and not self.root:
            raise ValueError(f"data.root is required for data.name={self.name}")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_pool(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No `pool` entry without a pool: a run's identity (checkpoints, MLflow params) stays what it was before
        pools existed."""
        dumped = handler(self)
        if self.pool is None:
            dumped.pop("pool", None)
        return dumped

    @model_validator(mode="after")
    def _pool_in_colour(self) -> DataConfig:
        if self.pool is not None and self.name == "digits":
            raise ValueError(
                "data.pool holds colour images: pair it with a colour labelled dataset "
                "(data.name: imagefolder or cifar10)"
            )
        return self


class AutoencoderConfig(Section):
    """The paper's denoising autoencoder (stage 1) and its early-stopped training."""

    filters: list[PositiveInt] = Field(default=[32, 64, 128], min_length=1)
    """One encoder block [conv -> BN -> ReLU -> maxpool2] per entry; the decoder mirrors it."""
    kernel_size: PositiveInt = 3
    noise_std: float = Field(default=0.01, ge=0.0)
    epochs: PositiveInt = 100
    patience: PositiveInt = 5
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3


class ClusterConfig(Section):
    """k-means on the autoencoder's bottleneck features (stage 2): the pseudo labels."""

    features: Literal["autoencoder", "pixels"] = "autoencoder"
    """What k-means clusters: the autoencoder's pooled bottleneck (the paper), or raw pixels (a
    baseline that asks whether the autoencoder earns its cost)."""
    k: int = Field(default=64, ge=2)
    n_init: PositiveInt = 10
    tsne_points: int = Field(default=2000, ge=10)
    """How many (randomly chosen) images the t-SNE plot shows; t-SNE is slow on large sets."""


class ModelConfig(Section):
    """The SimCLR network: backbone and projection head (shared by pretraining and evaluation)."""

    backbone: Literal["cifar_resnet", "resnet18", "resnet50"] = "cifar_resnet"
    blocks_per_stage: PositiveInt = 2
    """cifar_resnet only: bottleneck blocks in each of its three stages."""
    cifar_stem: bool = True
    """resnet18/50 only: a 3x3 stride-1 stem without max-pool, for small images."""
    head_dims: list[PositiveInt] = Field(default=[256, 128, 50], min_length=3)
    """Projection head widths; P1 drops its last layer, P2 its last two, P3 is the backbone."""
    head_batchnorm: bool = False
    """BatchNorm before each hidden ReLU of the head, as SimCLR's own code has (the paper's Keras head has
    none). Without it, lr >= 0.03 let a constant offset swamp ResNet-18's projections on the ImageNet
    subset (cosine ~0.9998 between all images, loss stuck at ln(2B-1))."""
    channels_last: bool = False
    """Run the network in the channels-last (NHWC) memory layout: the same arithmetic in another order.
    Faster on GPUs and, for the CIFAR ResNet, on CPUs (a pretraining step 1.27x faster on a 2-core Xeon);
    torchvision's ResNet-18 at 48 px ran 0.84x on that CPU. `benchmarks/pretrain_throughput.py` measures both."""


class AugmentConfig(Section):
    """SimCLR's view augmentations (Chen et al. 2020, Appendix A), each switchable."""

    flip: bool = True
    crop_scale: Optional[CropScale] = None
    """Random resized crop area range, e.g. [0.2, 1.0]; null keeps the paper's flip + colour set."""
    color_strength: float = Field(default=0.5, ge=0.0)
    color_p: float = Field(default=0.8, ge=0.0, le=1.0)
    grayscale_p: float = Field(default=0.2, ge=0.0, le=1.0)
    blur_p: float = Field(default=0.0, ge=0.0, le=1.0)
    """Gaussian blur with this probability, sigma in [0.1, 2.0] px scaled to a 224 px image (SimCLR's
    ImageNet augmentation); 0 keeps the paper's set."""


class KnnMonitorConfig(Section):
    """Weighted kNN accuracy of the backbone's features during pretraining (Wu et al. 2018, as in
    solo-learn and lightly): the fit split is the memory bank, the validation split the queries.
    True labels are read only for this measurement, never for training."""

    every: NonNegativeInt = 0
    """Measure after every N-th epoch and after the last one; 0 switches the monitor off."""
    k: PositiveInt = 20
    temperature: PositiveFloat = 0.1


class PretrainConfig(Section):
    """SimCLR / G-SimCLR pretraining (stage 3): the same settings for both methods."""

    epochs: PositiveInt = 15
    batch_size: int = Field(default=64, ge=2)
    """G-SimCLR's batch size; the paper keeps it equal to cluster.k."""
    lr: PositiveFloat = 0.1
    """Base learning rate; the optimiser uses it as `lr_scaling` says."""
    lr_scaling: Literal["none", "linear", "sqrt"] = "none"
    """none: lr as given (the paper); linear: lr x batch_size / 256 (SimCLR, Goyal et al. 2017);
    sqrt: lr x sqrt(batch_size) (SimCLR's recommendation for small batches, e.g. lr 0.075)."""
    warmup_epochs: NonNegativeInt = 0
    """Linear warm-up from 0 over this many epochs, then cosine decay to 0 (SimCLR uses 10)."""
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    decay_norm_and_bias: bool = True
    """False exempts BatchNorm parameters and biases from weight decay, as SimCLR, MoCo v3 and
    solo-learn do; the paper's Keras code decays every weight."""
    temperature: PositiveFloat = 0.1
    augment: AugmentConfig = AugmentConfig()
    knn: KnnMonitorConfig = KnnMonitorConfig()
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    """bf16: autocast forward passes to bfloat16 (the loss stays fp32); auto: bf16 where the device computes
    it natively (`gsimclr.training.device.native_bf16`: GPUs from Ampere on, CPUs with AMX or AVX512-BF16), fp32
    elsewhere, where bf16 would be emulated and slower. The precision a run used is logged with it."""
    compile: bool = False
    """Compile the network with torch.compile (pays a one-off compile time; worth it on GPUs)."""

    @model_validator(mode="after")
    def _warmup_fits(self) -> PretrainConfig:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"pretrain.warmup_epochs={self.warmup_epochs} must be shorter than pretrain.epochs={self.epochs}"
            )
        return self

    @property
    def scaled_lr(self) -> float:
        """The learning rate the optimiser starts from after warm-up."""
        scale = {"none": 1.0, "linear": self.batch_size / 256, "sqrt": self.batch_size**0.5}[self.lr_scaling]
        return self.lr * scale


class GuidanceConfig(Section):
    """How the G-SimCLR arm uses its pseudo labels (the SimCLR arm never sees them)."""

    labels: Literal["autoencoder", "network", "neighbours", "oracle"] = "autoencoder"
    """Where the pseudo labels come from. autoencoder: the `cluster` stage's k-means of the denoising
    autoencoder's features (the paper). network: no autoencoder; k-means of the contrastive network's own
    embeddings after `warmup_epochs` of plain SimCLR, re-clustered every `refresh_every` epochs (PCL/SwAV-style
    refreshed prototypes). neighbours: no labels at all; after `warmup_epochs` of plain SimCLR each image's
    `neighbours` most similar other images in its batch are its suspected false negatives (Huynh et al. 2022's
    detection), for `cancel` or `attract` with random batches. oracle: the true training labels -- an upper bound
    for measurement, not a method: it breaks the rule that pretraining never reads labels, and every report says
    so."""
    batches: Literal["guided", "random"] = "guided"
    """guided: the paper's batches stratified by pseudo label; random: plain SimCLR batches (to test a
    loss option alone). Random batches with `false_negatives: keep` or `debiased` read no pseudo labels at all."""
    false_negatives: FalseNegatives = "keep"
    """Same-pseudo-label images in a batch: keep as negatives (the paper), cancel them from the NT-Xent
    denominator, or attract them as extra positives (Huynh et al. 2022, false-negative elimination and
    attraction); debiased ignores pseudo labels and corrects the denominator for the expected share
    `tau_plus` of same-class negatives (Chuang et al. 2020)."""
    tau_plus: float = Field(default=0.1, ge=0.0, lt=1.0)
    """debiased only: the class prior, the chance that a random negative shares the anchor's class
    (1/C for C balanced classes)."""
    warmup_epochs: NonNegativeInt = 0
    """Epochs of plain SimCLR (random batches, every other image a negative) before the pseudo labels are
    used: an untrained network's clusters say little, so guidance starts once its embeddings mean something."""
    refresh_every: NonNegativeInt = 0
    """Every N epochs, re-cluster the model's own embeddings with k-means and guide with those labels from
    then on (DeepCluster/PCL-style); 0 keeps the autoencoder's labels throughout."""
    refresh_k: Optional[PositiveInt] = None
    """k of the re-clustering (default cluster.k); more clusters than classes (over-clustering) trade how
    many same-class pairs are found for how many of those found are right."""
    refresh_features: Literal["backbone", "head"] = "backbone"
    """Which embeddings are re-clustered: the backbone's (what the probes read) or the projection head's
    (what the loss compares)."""
    neighbours: PositiveInt = 1
    """labels: neighbours only: how many of its batch's most similar other images each image suspects (a batch of B
    from C balanced classes holds about (B - 1) / C same-class images per image)."""
    confident_share: float = Field(default=1.0, gt=0.0, le=1.0)
    """Incremental false-negative detection (Chen et al. 2022): at each refresh only this share of every cluster,
    the images nearest its centre, keeps its pseudo label at the first guided epoch, growing linearly to every
    image at the last epoch; the others are classes of their own (never a false negative). 1: every image keeps
    its label from the start."""

    @property
    def reads_pseudo_labels(self) -> bool:
        """Whether the guided arm reads pseudo labels at all: guided batches, or a loss that acts on same-label pairs.
        Random batches with `keep` or `debiased` read none (the debiased loss needs no labels), so they need no
        `cluster` stage's table; in-batch neighbours flag pairs instead."""
        return self.labels != "neighbours" and (self.batches == "guided" or self.false_negatives in LABELLED_LOSSES)

    @model_validator(mode="after")
    def _labels_are_used(self) -> GuidanceConfig:
        if self.labels == "neighbours" and (self.batches == "guided" or self.refresh_every):
            raise ValueError(
                "guidance.labels=neighbours flags pairs inside each batch and gives no labels to stratify or "
                "re-cluster by: set batches=random and refresh_every=0"
            )
        if self.batches == "random" and self.false_negatives in ("keep", "debiased"):
            if self.refresh_every or self.labels != "autoencoder":
                what = "guidance.refresh_every" if self.refresh_every else f"guidance.labels={self.labels}"
                uses = "false_negatives: cancel | attract"
                uses = uses if self.labels == "neighbours" else f"batches: guided or {uses}"
                raise ValueError(f"{what} needs pseudo labels to be used: {uses}")
        if self.labels == "network" and not self.refresh_every:
            raise ValueError("guidance.labels=network re-clusters the network's embeddings: set refresh_every >= 1")
        if self.confident_share < 1 and not self.refresh_every:
            raise ValueError(
                "guidance.confident_share ranks images by their distance to a refreshed cluster centre: "
                "set refresh_every >= 1"
            )
        if self.labels == "oracle" and self.refresh_every:
            raise ValueError("guidance.labels=oracle uses the true labels throughout: refresh_every must be 0")
        return self


class LinearProbeConfig(Section):
    """The linear probe of every row, controls included: multinomial logistic regression (scikit-learn,
    L-BFGS) on features standardised with the fit split's mean and variance; the inverse L2 strength C
    is chosen on the validation split. A convex probe measures the representation, not optimiser luck."""

    c_grid: list[PositiveFloat] = Field(default=[0.001, 0.01, 0.1, 1.0, 10.0], min_length=1)
    """Candidate values of C (smaller = stronger weight decay); the best on the validation split is tested."""
    max_iter: PositiveInt = 1000


class ClassifierConfig(Section):
    """One end-to-end training run: fine-tuning, training from scratch, or the supervised baseline.

    SGD with momentum and cosine decay, random-resized-crop + flip on every training image, early
    stopping on validation accuracy (the best validation epoch is the one tested)."""

    epochs: PositiveInt = 50
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 0.05
    """Learning rate of the linear classifier (and of a backbone trained from scratch)."""
    backbone_lr_scale: float = Field(default=0.1, gt=0.0, le=1.0)
    """A pretrained backbone learns at lr x this (fine-tuning keeps what pretraining learned); a
    randomly initialised backbone always learns at lr."""
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=5e-4, ge=0.0)
    patience: PositiveInt = 10
    """Early stopping on validation accuracy; the best validation epoch is the one tested."""
    crop_scale: Optional[CropScale] = (0.2, 1.0)
    """Random resized crop area range of the training images; null trains on the images as they are."""
    flip: bool = True


class EvaluateConfig(Section):
    """Evaluation (stage 4): linear probe, fine-tuning on a labelled fraction, supervised baseline."""

    linear: LinearProbeConfig = LinearProbeConfig()
    finetune: ClassifierConfig = ClassifierConfig(epochs=100, batch_size=32, patience=20)
    """Fine-tuning on `finetune_fraction` of the labels; also trains the from-scratch control on the same images."""
    finetune_fraction: float = Field(default=0.1, gt=0.0, le=1.0)
    supervised: ClassifierConfig = ClassifierConfig()


class Params(Section):
    """The whole params file (params.yaml or a study under pipelines/), validated."""

    seeds: list[Seed] = Field(default=[0], min_length=1)
    """Every stage runs once per seed (`gsimclr --seed N <stage>`); `compare` reports mean ± 95% CI over them."""
    data: DataConfig = DataConfig()
    autoencoder: AutoencoderConfig = AutoencoderConfig()
    cluster: ClusterConfig = ClusterConfig()
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    guidance: GuidanceConfig = GuidanceConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    checkpoint_every: PositiveInt = 1
    """Epochs between resume checkpoints of every training stage (operational: no stage re-runs when it changes)."""

    @model_validator(mode="after")
    def _guidance_fits_the_run(self) -> Params:
        g, epochs = self.guidance, self.pretrain.epochs
        if g.warmup_epochs >= epochs:
            raise ValueError(f"guidance.warmup_epochs={g.warmup_epochs} leaves none of pretrain.epochs={epochs} guided")
        if g.labels == "neighbours" and g.neighbours >= self.pretrain.batch_size:
            raise ValueError(
                f"guidance.neighbours={g.neighbours} suspects per image needs more other images in a batch: "
                f"set it below pretrain.batch_size={self.pretrain.batch_size}"
            )
        guided = epochs - g.warmup_epochs
        # network labels are first clustered when guidance starts; the autoencoder's first refresh is a period later
        if g.refresh_every and (g.refresh_every > guided or (g.labels == "autoencoder" and g.refresh_every == guided)):
            raise ValueError(
                f"guidance.refresh_every={g.refresh_every} is longer than the run: {guided} guided epochs "
                f"(pretrain.epochs={epochs} - guidance.warmup_epochs={g.warmup_epochs})"
            )
        if g.labels == "oracle" and self.data.pool is not None:
            raise ValueError(
                "guidance.labels=oracle reads the true labels of the pretraining images: data.pool has none"
            )
        return self

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        return seeds
