"""NT-Xent against a direct, per-pair transcription of Eq. (1) of the paper."""

import math

import pytest
import torch
import torch.nn.functional as F

from gsimclr.method.losses import contrastive_loss, nt_xent


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    z = torch.cat([z1, z2])
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sim = lambda a, b: F.cosine_similarity(z[a], z[b], dim=0) / temperature  # noqa: E731
        denominator = sum(torch.exp(sim(i, k)) for k in range(2 * n) if k != i)
        total = total - torch.log(torch.exp(sim(i, j)) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("n,dim,temperature", [(2, 3, 0.1), (5, 8, 0.5), (8, 4, 1.0), (16, 16, 0.07)])
def test_nt_xent_matches_reference_values_and_gradients(n, dim, temperature):
    torch.manual_seed(n)
    a = torch.randn(n, dim, dtype=torch.float64, requires_grad=True)
    b = torch.randn(n, dim, dtype=torch.float64, requires_grad=True)
    ours = nt_xent(a, b, temperature)
    grad_ours = torch.autograd.grad(ours, [a, b])
    ref = reference_nt_xent(a, b, temperature)
    grad_ref = torch.autograd.grad(ref, [a, b])
    assert ours.item() == pytest.approx(ref.item(), rel=1e-10)
    for g1, g2 in zip(grad_ours, grad_ref, strict=True):
        torch.testing.assert_close(g1, g2, rtol=1e-8, atol=1e-10)


def test_collapsed_embeddings_give_log_of_negatives():
    z = torch.ones(6, 4)
    assert nt_xent(z, z, 0.1).item() == pytest.approx(math.log(11), rel=1e-6)


def test_more_positives_average_over_them():
    """With ids shared by three samples, the loss averages the log-probabilities of both positives."""
    torch.manual_seed(0)
    z = torch.randn(6, 5, dtype=torch.float64)
    ids = torch.tensor([0, 0, 0, 1, 1, 1])
    zn = F.normalize(z, dim=1)
    logits = zn @ zn.T / 0.2
    expected = 0.0
    for i in range(6):
        others = [k for k in range(6) if k != i]
        log_den = torch.logsumexp(logits[i, others], 0)
        positives = [k for k in others if ids[k] == ids[i]]
        expected += -sum(logits[i, p] - log_den for p in positives) / len(positives)
    assert contrastive_loss(z, ids, 0.2).item() == pytest.approx((expected / 6).item(), rel=1e-10)


def reference_cancelled(z1, z2, temperature, clusters):
    """Per-pair transcription: the anchor's other-view positive over all but same-cluster negatives."""
    z, n = torch.cat([z1, z2]), len(z1)
    labels = clusters.repeat(2)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sim = lambda a, b: F.cosine_similarity(z[a], z[b], dim=0) / temperature  # noqa: E731
        kept = [k for k in range(2 * n) if k != i and (k == j or labels[k] != labels[i])]
        total = total - torch.log(torch.exp(sim(i, j)) / sum(torch.exp(sim(i, k)) for k in kept))
    return total / (2 * n)


def test_false_negative_cancellation_matches_its_transcription():
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    clusters = torch.tensor([0, 0, 1, 2, 2, 2])
    torch.testing.assert_close(nt_xent(z1, z2, 0.2, clusters, "cancel"), reference_cancelled(z1, z2, 0.2, clusters))
    assert nt_xent(z1, z2, 0.2, clusters, "cancel") < nt_xent(z1, z2, 0.2)  # fewer negatives, lower loss


def test_distinct_pseudo_labels_leave_nt_xent_unchanged_and_shared_ones_attract():
    g = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    distinct = torch.arange(5)
    for mode in ("cancel", "attract"):
        torch.testing.assert_close(nt_xent(z1, z2, 0.5, distinct, mode), nt_xent(z1, z2, 0.5))
    shared = torch.tensor([0, 0, 1, 1, 1])
    expected = contrastive_loss(torch.cat([z1, z2]), shared.repeat(2), 0.5)
    torch.testing.assert_close(nt_xent(z1, z2, 0.5, shared, "attract"), expected)
    assert not torch.isclose(expected, nt_xent(z1, z2, 0.5))
    with pytest.raises(ValueError):
        nt_xent(z1, z2, 0.5, None, "cancel")


def reference_debiased(z1, z2, temperature, tau_plus):
    """Per-anchor transcription of Chuang et al. (2020), Eq. 8, without the exponent shift."""
    z, n = torch.cat([z1, z2]), len(z1)
    sim = lambda a, b: torch.exp(F.cosine_similarity(z[a], z[b], dim=0) / temperature)  # noqa: E731
    n_neg = 2 * n - 2
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        negatives = sum(sim(i, k) for k in range(2 * n) if k not in (i, j))
        g = max((negatives - n_neg * tau_plus * sim(i, j)) / (1 - tau_plus), n_neg * math.exp(-1 / temperature))
        total = total - torch.log(sim(i, j) / (sim(i, j) + g))
    return total / (2 * n)


@pytest.mark.parametrize("tau_plus", [0.05, 0.2, 0.5])
def test_debiased_loss_matches_its_transcription(tau_plus):
    g = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        nt_xent(z1, z2, 0.5, false_negatives="debiased", tau_plus=tau_plus), reference_debiased(z1, z2, 0.5, tau_plus)
    )


def test_debiased_loss_is_nt_xent_without_prior_and_clamps_when_negatives_are_far():
    g = torch.Generator().manual_seed(6)
    z1, z2 = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(7, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(nt_xent(z1, z2, 0.1, false_negatives="debiased", tau_plus=0.0), nt_xent(z1, z2, 0.1))
    # Two antipodal images with identical views: the corrected sum would be negative, so the clamp
    # M·e^(-1/T) holds it, and the loss is log(1 + M·e^(-2/T)).
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    loss = nt_xent(z, z, 0.5, false_negatives="debiased", tau_plus=0.3)
    assert loss.item() == pytest.approx(math.log(1 + 2 * math.exp(-4)), rel=1e-10)
    assert loss.item() == pytest.approx(reference_debiased(z, z, 0.5, 0.3).item(), rel=1e-10)
