"""The fully convolutional denoising autoencoder whose bottleneck feeds k-means."""

from __future__ import annotations

import torch
from torch import nn


def _block(in_ch: int, out_ch: int, kernel_size: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]


class DenoisingAutoencoder(nn.Module):
    """Encoder: `len(filters)` x [conv -> BN -> ReLU -> maxpool2]; decoder mirrors it with upsampling.

    Gaussian noise is added to the input in training mode only (as Keras' GaussianNoise layer does),
    and the loss compares the reconstruction with the clean image.
    """

    def __init__(self, in_channels: int, filters: list[int], kernel_size: int = 3, noise_std: float = 0.01) -> None:
        super().__init__()
        self.noise_std = noise_std
        encoder: list[nn.Module] = []
        width = in_channels
        for out in filters:
            encoder += [*_block(width, out, kernel_size), nn.MaxPool2d(2)]
            width = out
        decoder: list[nn.Module] = []
        for out in reversed(filters):
            decoder += [nn.Upsample(scale_factor=2, mode="nearest"), *_block(width, out, kernel_size)]
            width = out
        decoder += [nn.Conv2d(width, in_channels, kernel_size, padding=kernel_size // 2), nn.Sigmoid()]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise_std > 0:
            x = x + torch.randn_like(x) * self.noise_std
        return self.decoder(self.encoder(x))

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled bottleneck, the representation the official code clusters."""
        return self.encoder(x).mean(dim=(2, 3))
