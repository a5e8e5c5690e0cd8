"""Contrastive losses: one formula whose positives come from an id vector.

NT-Xent is the case where every sample's only positive is the other view of the same image; other
choices of `ids` (pseudo labels, true labels for a SupCon bound) reuse the same code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_loss(z: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over anchors of -mean_{p in positives} log softmax_{k != anchor}(cos(z_a, z_k) / T)_p.

    `z` is (M, D); `ids` is (M,), and samples sharing an id are positives of each other. Every other
    sample, the anchor excluded, is in the denominator, as in Eq. (1) of the paper.
    """
    z = F.normalize(z, dim=1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (ids[:, None] == ids[None, :]) & ~self_mask
    per_anchor = log_prob.masked_fill(~positives, 0.0).sum(1) / positives.sum(1).clamp(min=1)
    return -per_anchor.mean()


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent over 2N projections: z1[i] and z2[i] are the two views of image i."""
    n = len(z1)
    ids = torch.arange(n, device=z1.device).repeat(2)
    return contrastive_loss(torch.cat([z1, z2]), ids, temperature)
