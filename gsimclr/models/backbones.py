"""Feature backbones: the paper's CIFAR ResNet (v1, bottleneck) and torchvision's ResNet-18/50."""

from __future__ import annotations

from typing import cast

from torch import nn


class Bottleneck(nn.Module):
    """ResNet v1 bottleneck: 1x1 reduce -> 3x3 -> 1x1 expand (x4), projection shortcut when shapes change."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_ch == out_ch
            else nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem conv3x3(16), three stages of bottleneck widths 16/32/64 (outputs 64/128/256), global pool."""

    def __init__(self, in_channels: int, blocks_per_stage: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        ]
        in_ch = 16
        for stage, width in enumerate((16, 32, 64)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(Bottleneck(in_ch, width, stride))
                in_ch = width * Bottleneck.expansion
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.out_dim = in_ch

    def forward(self, x):
        return self.net(x)


def _torchvision_resnet(factory, in_channels: int, cifar_stem: bool) -> nn.Module:
    net = factory(weights=None)
    if cifar_stem or in_channels != 3:
        kernel, stride, padding = (3, 1, 1) if cifar_stem else (7, 2, 3)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel, stride=stride, padding=padding, bias=False)
    if cifar_stem:
        net.maxpool = nn.Identity()
    net.out_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net


BACKBONES = ("cifar_resnet", "resnet18", "resnet50")


def feature_dim(backbone: nn.Module) -> int:
    """Width of the features a backbone built here outputs (its `out_dim` attribute)."""
    return cast(int, backbone.out_dim)


def build_backbone(name: str, in_channels: int, blocks_per_stage: int = 2, cifar_stem: bool = True) -> nn.Module:
    """A backbone mapping (B, C, H, W) images to (B, out_dim) features; `out_dim` is an attribute.

    Args:
        name: `cifar_resnet` (the paper's CIFAR ResNet), `resnet18` or `resnet50` (torchvision, untrained).
        in_channels: image channels (1 for digits, 3 for RGB).
        blocks_per_stage: bottlenecks per stage of `cifar_resnet` (ignored by the torchvision ResNets).
        cifar_stem: torchvision ResNets only: a 3x3 stride-1 stem without max-pool, for small images.

    >>> build_backbone("resnet18", 3, cifar_stem=False).out_dim
    512
    """
    if name == "cifar_resnet":
        return CifarResNet(in_channels, blocks_per_stage)
    from torchvision.models import resnet18, resnet50  # 1.5 s of imports that only these backbones need

    factories = {"resnet18": resnet18, "resnet50": resnet50}
    if name not in factories:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return _torchvision_resnet(factories[name], in_channels, cifar_stem)
