"""G-SimCLR in one page, from the package's blocks and no config (Chakraborty et al. 2020, Sec. III):

1. a denoising autoencoder learns to reconstruct the images from noisy copies;
2. k-means on its bottleneck features gives every image a pseudo label;
3. each batch takes images of as many different pseudo labels as it can (`GuidedBatchSampler`), so an
   image's negatives are rarely of its own (pseudo) class;
4. SimCLR's step on those batches: two augmented views, one network, NT-Xent (`ContrastiveStep`).

Run: python examples/minimal_gsimclr.py  (scikit-learn's digits; ~20 s of CPU time on a 2-core AMD EPYC)
"""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from gsimclr.method.augment import ViewAugment
from gsimclr.method.clustering import kmeans_pseudo_labels
from gsimclr.method.contrastive_step import ContrastiveStep
from gsimclr.method.samplers import GuidedBatchSampler
from gsimclr.models.autoencoder import DenoisingAutoencoder
from gsimclr.models.backbones import build_backbone
from gsimclr.models.heads import SimCLRNet

K = BATCH = 16  # the paper keeps the batch size equal to the number of clusters


def digits() -> torch.Tensor:
    """1 797 grey 8x8 digits, scaled to [0, 1], as (N, 1, 8, 8) floats (the project's quickstart size too)."""
    return torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16.0


def pseudo_labels(images: torch.Tensor, epochs: int = 3) -> np.ndarray:
    """Steps 1-2: a denoising autoencoder, then k-means on its bottleneck features."""
    autoencoder = DenoisingAutoencoder(in_channels=1, filters=[16, 32], noise_std=0.1)
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=1e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(images)).split(64):
            loss = F.mse_loss(autoencoder(images[batch]), images[batch])  # noise is added inside, in training
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        features = autoencoder.eval().features(images).flatten(1).numpy()
    labels, _ = kmeans_pseudo_labels(features, k=K, n_init=3, seed=0)
    return labels


def pretrain(images: torch.Tensor, labels: np.ndarray, epochs: int = 2) -> list[float]:
    """Steps 3-4: guided batches through SimCLR's step; returns the mean loss of every epoch."""
    net = SimCLRNet(build_backbone("cifar_resnet", in_channels=1, blocks_per_stage=1), head_dims=[64, 32])
    step = ContrastiveStep(
        net,
        ViewAugment(flip=False, crop_scale=(0.5, 1.0), grayscale_p=0.0, size=8),
        lambda idx: images[idx],
        temperature=0.5,
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    sampler = GuidedBatchSampler(labels, BATCH, seed=0)
    losses = []
    for epoch in range(1, epochs + 1):
        total = 0.0
        for batch in sampler.batches(epoch):
            loss = step(batch)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / len(sampler))
    return losses


if __name__ == "__main__":
    torch.manual_seed(0)
    images = digits()
    labels = pseudo_labels(images)
    print(f"pseudo labels: {K} clusters, sizes {np.bincount(labels, minlength=K).min()}-{np.bincount(labels).max()}")
    for epoch, loss in enumerate(pretrain(images, labels), 1):
        print(f"G-SimCLR epoch {epoch}: NT-Xent {loss:.3f}")
