"""Contrastive losses: one formula whose positives come from an id vector.

NT-Xent is the case where every sample's only positive is the other view of the same image; other
choices of `ids` (pseudo labels, true labels for a SupCon bound) reuse the same code.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F

FalseNegatives = Literal["keep", "cancel", "attract", "debiased"]
LABELLED_LOSSES: tuple[FalseNegatives, ...] = ("cancel", "attract")
"""The `false_negatives` choices whose loss reads pseudo labels (the others need none)."""


def contrastive_loss(
    z: torch.Tensor,
    ids: torch.Tensor,
    temperature: float,
    hidden: Optional[torch.Tensor] = None,
    attracted: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Mean over anchors of -mean_{p in positives} log softmax_{k != anchor}(cos(z_a, z_k) / T)_p.

    `z` is (M, D); `ids` is (M,), and samples sharing an id are positives of each other. Every other
    sample, the anchor excluded, is in the denominator, as in Eq. (1) of the paper, except the pairs
    `hidden` (M, M) marks (suspected false negatives), which are left out of it. `attracted` (M, M) marks
    further positives of each anchor (suspected false negatives pulled in, not pushed away).
    """
    z = F.normalize(z, dim=1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    same_id = ids[:, None] == ids[None, :]
    positives = (same_id if attracted is None else same_id | attracted) & ~self_mask
    removed = self_mask if hidden is None else self_mask | (hidden & ~positives)
    logits = logits.masked_fill(removed, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    per_anchor = log_prob.masked_fill(~positives, 0.0).sum(1) / positives.sum(1).clamp(min=1)
    return -per_anchor.mean()


def debiased_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float, tau_plus: float) -> torch.Tensor:
    """Debiased contrastive loss (Chuang et al. 2020, Eq. 8), the unlabelled answer to false negatives.

    The sum over the M = 2N - 2 negatives is replaced by (sum - M·tau_plus·pos) / (1 - tau_plus), its
    expectation over true negatives when a share `tau_plus` of them share the anchor's class, clamped at
    its minimum M·e^(-1/T). With tau_plus = 0 it is NT-Xent. Exponents are shifted by the largest possible
    logit 1/T (cosine <= 1), which leaves the loss unchanged and keeps exp finite for small T.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    m = len(z)
    sim = torch.exp((z @ z.T - 1.0) / temperature)
    anchor = torch.arange(m, device=z.device)
    partner = (anchor + m // 2) % m
    positive = sim[anchor, partner]
    negatives = sim.masked_fill(torch.eye(m, dtype=torch.bool, device=z.device), 0.0).sum(1) - positive
    n_neg = m - 2
    corrected = (negatives - n_neg * tau_plus * positive) / (1.0 - tau_plus)
    corrected = corrected.clamp(min=n_neg * math.exp(-2.0 / temperature))  # M·e^(-1/T), shifted by 1/T
    return (torch.log(positive + corrected) - torch.log(positive)).mean()


def nt_xent(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float,
    pseudo_labels: Optional[torch.Tensor] = None,
    false_negatives: FalseNegatives = "keep",
    tau_plus: float = 0.1,
    suspects: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """SimCLR's NT-Xent over 2N projections: z1[i] and z2[i] are the two views of image i.

    With pseudo labels, images of the anchor's cluster are treated as false negatives: `cancel`
    drops them from the denominator (false-negative elimination), `attract` makes them extra
    positives (false-negative attraction: supervised-contrastive style, with pseudo labels in place of
    classes) -- the two strategies of Huynh et al. 2022, "Boosting Contrastive Self-Supervised Learning with
    False Negative Cancellation" (WACV 2022). `suspects` (N, N), in place of pseudo labels, names each image's
    suspected false negatives directly (their similarity-based detection, `gsimclr.method.neighbours`); both
    views of a suspect are cancelled or attracted. `debiased` needs neither: it corrects the denominator for an
    assumed class prior `tau_plus`.
    """
    n = len(z1)
    z, ids = torch.cat([z1, z2]), torch.arange(n, device=z1.device).repeat(2)
    if false_negatives == "keep":
        return contrastive_loss(z, ids, temperature)
    if false_negatives == "debiased":
        return debiased_nt_xent(z1, z2, temperature, tau_plus)
    if suspects is None:
        if pseudo_labels is None:
            raise ValueError(f"false_negatives={false_negatives!r} needs pseudo labels or suspects")
        labels = pseudo_labels.to(z1.device)
        suspects = labels[:, None] == labels[None, :]
    pairs = suspects.to(z1.device).repeat(2, 2)  # image pairs -> the pairs of their views
    if false_negatives == "attract":
        return contrastive_loss(z, ids, temperature, attracted=pairs)
    return contrastive_loss(z, ids, temperature, hidden=pairs)
