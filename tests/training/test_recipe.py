"""The SimCLR recipe's building blocks (schedule, parameter groups, blur), the kNN monitor and the linear
probe, each against a direct reference."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gsimclr.evaluation.knn import knn_accuracy, knn_predict
from gsimclr.evaluation.probe import linear_probe
from gsimclr.evaluation.stats import summarize
from gsimclr.method.augment import random_gaussian_blur
from gsimclr.reporting.tables import beats
from gsimclr.settings.config import PretrainConfig
from gsimclr.training.optim import parameter_groups, warmup_cosine


def reference_knn(memory, memory_labels, queries, n_classes, k, temperature):
    """Wu et al. (2018), Eq. 8, one query at a time."""
    memory = memory / np.linalg.norm(memory, axis=1, keepdims=True)
    out = []
    for q in queries:
        sims = memory @ (q / np.linalg.norm(q))
        top = np.argsort(-sims)[:k]
        votes = np.zeros(n_classes)
        for i in top:
            votes[memory_labels[i]] += math.exp(sims[i] / temperature)
        out.append(int(votes.argmax()))
    return np.array(out)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_knn_vote_matches_a_per_query_reference(k):
    rng = np.random.default_rng(k)
    memory, queries = rng.normal(size=(60, 8)), rng.normal(size=(25, 8))
    labels = rng.integers(0, 4, 60)
    got = knn_predict(torch.tensor(memory), torch.tensor(labels), torch.tensor(queries), 4, k, 0.1, chunk=7)
    np.testing.assert_array_equal(got.numpy(), reference_knn(memory, labels, queries, 4, k, 0.1))


def test_knn_accuracy_is_one_on_separable_clusters_and_k_is_checked():
    centres = torch.eye(3) * 10
    memory = centres.repeat_interleave(10, 0) + torch.randn(30, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(3).repeat_interleave(10)
    assert knn_accuracy(memory, labels, centres, torch.arange(3), k=5, temperature=0.1) == 1.0
    with pytest.raises(ValueError, match="larger than the memory bank"):
        knn_accuracy(memory, labels, centres, torch.arange(3), k=31, temperature=0.1)


def test_warmup_then_cosine_schedule():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_cosine(optimizer, warmup_steps=4, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(lrs[:5], [0.25, 0.5, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(lrs[4:], [0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)])


def test_without_warmup_it_is_torch_cosine_annealing():
    params = [nn.Parameter(torch.zeros(1))]
    ours, theirs = torch.optim.SGD(params, lr=0.3), torch.optim.SGD(params, lr=0.3)
    a, b = warmup_cosine(ours, 0, 10), torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=10)
    for _ in range(10):
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"])
        ours.step(), theirs.step(), a.step(), b.step()


def test_norm_and_bias_parameters_can_be_exempt_from_weight_decay():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decayed, exempt = parameter_groups(model, 1e-4, decay_norm_and_bias=False)
    assert {id(p) for p in decayed["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert {id(p) for p in exempt["params"]} == {
        id(model[0].bias),
        id(model[1].weight),
        id(model[1].bias),
        id(model[3].bias),
    }
    assert (decayed["weight_decay"], exempt["weight_decay"]) == (1e-4, 0.0)
    (everything,) = parameter_groups(model, 1e-4, decay_norm_and_bias=True)
    assert len(everything["params"]) == len(list(model.parameters()))


def test_lr_scaling_rules():
    assert PretrainConfig(lr=0.3, batch_size=64, lr_scaling="linear").scaled_lr == pytest.approx(0.075)
    assert PretrainConfig(lr=0.075, batch_size=64, lr_scaling="sqrt").scaled_lr == pytest.approx(0.6)
    assert PretrainConfig(lr=0.1, batch_size=64).scaled_lr == 0.1


def test_blur_is_identity_when_skipped_keeps_constant_images_and_smooths_noise():
    torch.manual_seed(0)
    noise = torch.rand(6, 3, 48, 48)
    assert torch.equal(random_gaussian_blur(noise, p=0.0), noise)
    flat = torch.full((2, 3, 48, 48), 0.4)
    torch.testing.assert_close(random_gaussian_blur(flat, p=1.0), flat)
    blurred = random_gaussian_blur(noise, p=1.0, sigma=(1.0, 1.0), reference_size=48)
    assert blurred.std() < 0.6 * noise.std()
    torch.testing.assert_close(blurred.mean(), noise.mean(), atol=5e-3, rtol=0)


def test_probe_chooses_c_on_validation_and_never_looks_at_the_test_split():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 20)), rng.integers(0, 3, 200)
    x[:, 0] += 2 * y
    grid = [0.001, 0.1, 10.0]
    first = linear_probe(x[:120], y[:120], x[120:160], y[120:160], x[160:], grid)
    shuffled = linear_probe(x[:120], y[:120], x[120:160], y[120:160], rng.normal(size=(40, 20)), grid)
    assert first.c == shuffled.c and first.val_acc == max(first.val_acc_by_c.values())
    assert set(first.val_acc_by_c) == set(grid)


def test_the_control_verdict_says_plainly_when_a_method_does_not_beat_it():
    assert beats(summarize([5.0, 6.0, 7.0]), "SimCLR") == "SimCLR beats it"
    assert "does not beat it" in beats(summarize([-2.0, 3.0, 1.0]), "SimCLR")
    assert "worse than the control" in beats(summarize([-5.0, -6.0, -7.0]), "G-SimCLR")
    assert beats(summarize([4.0]), "SimCLR") == "one seed: cannot tell"
