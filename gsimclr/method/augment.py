"""SimCLR view augmentations on whole batches, with independent random parameters for every image.

torchvision's v2 transforms draw one set of parameters per call, so a batch would share one crop and
one colour jitter (the official G-SimCLR code has exactly that flaw). Here every image gets its own
crop box, flip, jitter factors and grey-scale coin, all as tensor ops that run on the batch's device.
Cropping uses torchvision's `roi_align`, which resamples a different box per image in one kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

# RGB -> YIQ; a hue shift is a rotation of the (I, Q) chroma plane.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_LUMA = _RGB_TO_YIQ[0]


def _uniform(n: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(n, device=like.device, dtype=like.dtype).uniform_(low, high)


def _coin(n: int, p: float, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, device=like.device) < p


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Per-pixel luma, shape (B, 1, H, W)."""
    if x.shape[1] == 1:
        return x
    return torch.einsum("c,bchw->bhw", _LUMA.to(x), x).unsqueeze(1)


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size crop of a (..., H, W) batch (a view, no copy); the batch itself when it is
    that size already."""
    height, width = images.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top : top + size, left : left + size]


def random_resized_crop(
    x: torch.Tensor, scale: tuple[float, float], ratio=(3 / 4, 4 / 3), size: Optional[int] = None
) -> torch.Tensor:
    """Crop a random box of `scale` area and `ratio` aspect from each image, resized to `size` x `size`
    (default: the input size)."""
    b, _, h, w = x.shape
    area = _uniform(b, *scale, x) * (h * w)
    log_ratio = _uniform(b, math.log(ratio[0]), math.log(ratio[1]), x)
    aspect = torch.exp(log_ratio)
    crop_w = torch.sqrt(area * aspect).clamp(1.0, w)
    crop_h = torch.sqrt(area / aspect).clamp(1.0, h)
    x0 = torch.rand(b, device=x.device, dtype=x.dtype) * (w - crop_w)
    y0 = torch.rand(b, device=x.device, dtype=x.dtype) * (h - crop_h)
    boxes = torch.stack([torch.arange(b, device=x.device, dtype=x.dtype), x0, y0, x0 + crop_w, y0 + crop_h], 1)
    from torchvision.ops import roi_align  # imported where used: stages that never crop skip 1.5 s of imports

    output = (h, w) if size is None else (size, size)
    return roi_align(x, boxes, output_size=output, spatial_scale=1.0, sampling_ratio=1, aligned=True)


def random_flip(x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability p, independently per image."""
    flip = _coin(x.shape[0], p, x).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)


def color_jitter(x: torch.Tensor, strength: float, p: float) -> torch.Tensor:
    """SimCLR's colour distortion: brightness, contrast, saturation 0.8*s and hue 0.2*s, applied with p.

    Images that skip the jitter get identity factors, so the whole batch takes one code path.
    The order is fixed (brightness, contrast, saturation, hue) rather than shuffled per image.
    """
    b = x.shape[0]
    apply = _coin(b, p, x).to(x.dtype)

    def factor(spread: float) -> torch.Tensor:
        drawn = _uniform(b, max(0.0, 1 - spread), 1 + spread, x)
        return (apply * drawn + (1 - apply)).view(-1, 1, 1, 1)

    x = (x * factor(0.8 * strength)).clamp_(0, 1)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * factor(0.8 * strength) + mean).clamp_(0, 1)
    if x.shape[1] == 1:
        return x
    gray = _gray(x)
    x = ((x - gray) * factor(0.8 * strength) + gray).clamp_(0, 1)
    hue = apply * _uniform(b, -0.2 * strength, 0.2 * strength, x) * (2 * math.pi)
    cos, sin = torch.cos(hue), torch.sin(hue)
    rotation = torch.zeros(b, 3, 3, device=x.device, dtype=x.dtype)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = cos, -sin, sin, cos
    to_yiq = _RGB_TO_YIQ.to(x)
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq
    return torch.einsum("bij,bjhw->bihw", matrix, x).clamp_(0, 1)


def random_gaussian_blur(
    x: torch.Tensor, p: float, sigma: tuple[float, float] = (0.1, 2.0), reference_size: int = 224
) -> torch.Tensor:
    """SimCLR's blur: with probability p, a Gaussian of sigma ~ U(sigma) and a kernel of 10 % of the side.

    SimCLR's range is for 224 px images; it is scaled by side / `reference_size` so a 48 px image is
    blurred as much, relative to its size, as an ImageNet one. One grouped, separable convolution
    blurs the whole batch, each image with its own sigma (an image that skips the blur gets a delta).
    """
    b, c, h, w = x.shape
    scale = min(h, w) / reference_size
    radius = max(1, int(0.1 * min(h, w)) // 2)
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    sigmas = _uniform(b, sigma[0] * scale, sigma[1] * scale, x)
    kernels = torch.exp(-offsets.square() / (2 * sigmas.square().unsqueeze(1)))
    kernels = torch.where(_coin(b, p, x).unsqueeze(1), kernels, (offsets == 0).to(x.dtype).expand_as(kernels))
    kernels = (kernels / kernels.sum(1, keepdim=True)).repeat_interleave(c, dim=0)  # (B*C, K)
    flat = x.reshape(1, b * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernels.view(b * c, 1, 1, -1), groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernels.view(b * c, 1, -1, 1), groups=b * c)
    return flat.view(b, c, h, w)


def random_grayscale(x: torch.Tensor, p: float) -> torch.Tensor:
    """Replace each colour image by its luma with probability p (SimCLR: 0.2)."""
    if x.shape[1] == 1 or p == 0:
        return x
    gray = _coin(x.shape[0], p, x).view(-1, 1, 1, 1)
    return torch.where(gray, _gray(x).expand_as(x), x)


@dataclass(frozen=True)
class ViewAugment:
    """Draws one random view of every image in a float batch in [0, 1] (B, C, H, W), in SimCLR's order
    (Chen et al. 2020, Appendix A): crop, flip, colour distortion, grey-scale, blur.

    >>> views = ViewAugment(crop_scale=(0.2, 1.0), blur_p=0.5)(torch.rand(4, 3, 32, 32))
    >>> views.shape
    torch.Size([4, 3, 32, 32])
    """

    flip: bool = True
    crop_scale: Optional[tuple[float, float]] = None
    """Area range of the random-resized crop; None: no crop."""
    color_strength: float = 0.5
    color_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    size: Optional[int] = None
    """Side of the views (None: the input's). Inputs stored larger are cropped from their whole image
    (their central crop when `crop_scale` is None)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop_scale is not None:
            x = random_resized_crop(x, self.crop_scale, size=self.size)
        elif self.size is not None:
            x = center_crop(x, self.size)
        if self.flip:
            x = random_flip(x)
        if self.color_strength > 0 and self.color_p > 0:
            x = color_jitter(x, self.color_strength, self.color_p)
        x = random_grayscale(x, self.grayscale_p)
        if self.blur_p > 0:
            x = random_gaussian_blur(x, self.blur_p)
        return x
