"""Shapes of the P1/P2/P3 taps, the autoencoder, and per-image randomness of the augmentations."""

import pytest
import torch

from gsimclr.method.augment import ViewAugment, center_crop, color_jitter, random_resized_crop
from gsimclr.models import build
from gsimclr.models.autoencoder import DenoisingAutoencoder
from gsimclr.models.backbones import build_backbone
from gsimclr.models.heads import SimCLRNet
from gsimclr.settings.config import ModelConfig


@pytest.mark.parametrize("head_batchnorm", [False, True])
@pytest.mark.parametrize("backbone,size,feat", [("cifar_resnet", 16, 256), ("resnet18", 32, 512)])
def test_representation_taps(backbone, size, feat, head_batchnorm):
    net = SimCLRNet(build_backbone(backbone, 3, blocks_per_stage=1), [256, 128, 50], head_batchnorm)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in net.head.layers) == (2 if head_batchnorm else 0)
    taps = net.representations(torch.rand(4, 3, size, size))
    assert taps["P3"].shape == (4, feat)
    assert taps["P2"].shape == (4, 256)
    assert taps["P1"].shape == (4, 128)
    assert taps["P2"].min() >= 0 and taps["P1"].min() >= 0  # tapped after the ReLUs, BatchNorm or not
    assert net(torch.rand(4, 3, size, size)).shape == (4, 50)
    # P1 is the head without its last layer: applying that layer to P1 gives the projection.
    torch.testing.assert_close(net.head.layers[-1](taps["P1"]), net.head(taps["P3"]))


def test_autoencoder_reconstructs_shape_and_pools_bottleneck():
    model = DenoisingAutoencoder(1, [8, 16], kernel_size=3, noise_std=0.1)
    x = torch.rand(5, 1, 16, 16)
    assert model(x).shape == x.shape
    assert model.eval().features(x).shape == (5, 16)


def test_noise_only_in_training_mode():
    model = DenoisingAutoencoder(1, [4], noise_std=0.5).eval()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(model(x), model(x))


def test_each_image_gets_its_own_random_view():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 16, 16)
    batch = image.repeat(8, 1, 1, 1)
    views = ViewAugment(crop_scale=(0.3, 1.0), color_strength=0.5, color_p=1.0, grayscale_p=0.0)(batch)
    assert views.shape == batch.shape
    assert views.min() >= 0 and views.max() <= 1
    distinct = {tuple(v.flatten()[:20].tolist()) for v in views}
    assert len(distinct) == 8


def test_full_crop_and_neutral_jitter_are_identity():
    x = torch.rand(4, 3, 12, 12)
    torch.testing.assert_close(random_resized_crop(x, (1.0, 1.0), ratio=(1.0, 1.0)), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(color_jitter(x, strength=0.0, p=1.0), x, atol=1e-5, rtol=0)


def test_views_of_images_stored_larger_come_out_at_the_network_size():
    torch.manual_seed(0)
    stored = torch.rand(6, 3, 14, 14)
    cropped = ViewAugment(crop_scale=(0.3, 1.0), color_strength=0.0, grayscale_p=0.0, size=12)(stored)
    assert cropped.shape == (6, 3, 12, 12)
    uncropped = ViewAugment(flip=False, color_strength=0.0, grayscale_p=0.0, size=12)(stored)
    torch.testing.assert_close(uncropped, stored[..., 1:13, 1:13])  # no crop asked: the central crop
    assert torch.equal(center_crop(stored, 14), stored)
    # The whole stored image is a crop candidate: a full-area crop resamples all 14 x 14 pixels to 12 x 12.
    whole = random_resized_crop(stored, (1.0, 1.0), ratio=(1.0, 1.0), size=12)
    torch.testing.assert_close(whole.mean((2, 3)), stored.mean((2, 3)), atol=0.02, rtol=0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_every_network_the_stages_build_takes_the_configured_layout(channels_last):
    cfg = ModelConfig(backbone="cifar_resnet", blocks_per_stage=1, channels_last=channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for net in (build.backbone(cfg, 3), build.simclr_net(cfg, 3)):  # the supervised baseline's, SimCLR's
        convs = [p for p in net.parameters() if p.dim() == 4]
        assert convs and all(p.is_contiguous(memory_format=layout) for p in convs)
    x = torch.rand(2, 3, 16, 16)  # inputs need no conversion: the output is the same either way
    torch.manual_seed(0)
    plain = build.simclr_net(ModelConfig(backbone="cifar_resnet", blocks_per_stage=1), 3).eval()
    torch.manual_seed(0)
    torch.testing.assert_close(build.simclr_net(cfg, 3).eval()(x), plain(x), atol=1e-5, rtol=1e-4)
