"""Networks and augmentations from the validated config.

The networks (`gsimclr.models`) and the method's blocks (`gsimclr.method`) know nothing of
`gsimclr.settings.config`, so they can be reused and tested on their own; the stages build them through
these functions.
"""

from __future__ import annotations

import torch
from torch import nn

from gsimclr.method.augment import ViewAugment
from gsimclr.models.autoencoder import DenoisingAutoencoder
from gsimclr.models.backbones import build_backbone
from gsimclr.models.heads import SimCLRNet
from gsimclr.settings.config import AugmentConfig, AutoencoderConfig, ClassifierConfig, ModelConfig


def autoencoder(cfg: AutoencoderConfig, channels: int) -> DenoisingAutoencoder:
    """The paper's fully convolutional denoising autoencoder of the `autoencoder` section, untrained."""
    return DenoisingAutoencoder(channels, list(cfg.filters), cfg.kernel_size, cfg.noise_std)


def backbone(cfg: ModelConfig, channels: int) -> nn.Module:
    """The `model` section's backbone, untrained, in its memory layout (convolutions follow their weights'
    layout, so inputs need no conversion)."""
    net = build_backbone(cfg.backbone, channels, cfg.blocks_per_stage, cfg.cifar_stem)
    return net.to(memory_format=torch.channels_last) if cfg.channels_last else net


def simclr_net(cfg: ModelConfig, channels: int) -> SimCLRNet:
    """Backbone + projection head of the `model` section, untrained (every network the stages build, the
    supervised baseline's included, comes from `backbone`)."""
    return SimCLRNet(backbone(cfg, channels), cfg.head_dims, cfg.head_batchnorm)


def view_augment(cfg: AugmentConfig, size: int) -> ViewAugment:
    """SimCLR's views as `pretrain.augment` configures them, `size` x `size` (`data.image_size`)."""
    return ViewAugment(**cfg.model_dump(), size=size)  # the section has ViewAugment's other fields


def classifier_augment(cfg: ClassifierConfig, size: int) -> ViewAugment:
    """Crop and flip only (no colour distortion), `size` x `size`: the standard augmentation of supervised
    training."""
    return ViewAugment(flip=cfg.flip, crop_scale=cfg.crop_scale, color_strength=0.0, grayscale_p=0.0, size=size)
