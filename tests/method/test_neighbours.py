"""In-batch false-negative detection (labels: neighbours): who is suspected, what the loss does with suspects, and
how the diagnostics score them."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gsimclr.method.contrastive_step import ContrastiveStep
from gsimclr.method.losses import nt_xent
from gsimclr.method.neighbours import NeighbourDetector, SuspectDiagnostics, batch_suspects


def two_groups(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Views of 6 images around two directions (images 0-2 near e1, 3-5 near e2), a little noise per view."""
    centres = torch.tensor([[1.0, 0.0, 0.0]] * 3 + [[0.0, 1.0, 0.0]] * 3)
    noise = lambda: 0.05 * torch.randn(6, 3, generator=generator)  # noqa: E731
    return centres + noise(), centres + noise()


def test_the_most_similar_images_are_suspected_both_ways_and_never_oneself():
    z1, z2 = two_groups(torch.Generator().manual_seed(0))
    for n in (1, 2):
        suspects = batch_suspects(z1, z2, n)
        assert torch.equal(suspects, suspects.T) and not suspects.diagonal().any()
        assert (suspects.sum(1) >= n).all()
        group = torch.arange(6) // 3
        assert (group[:, None] == group[None, :])[suspects].all()  # every suspect is of the image's own group
    assert batch_suspects(z1, z2, 2).sum() == 2 * 2 * 3  # n = 2: each group's three images suspect each other
    with pytest.raises(ValueError, match="batch of more than 6"):
        batch_suspects(z1, z2, 6)


def reference(z1, z2, temperature, suspects, mode):
    """Per-anchor transcription: anchor view a of image i; its positives are its other view and, under `attract`,
    both views of every suspect of i; under `cancel` the suspects' views leave its denominator."""
    z, n = torch.cat([z1, z2]), len(z1)
    image = lambda a: a % n  # noqa: E731
    sim = lambda a, b: torch.exp(F.cosine_similarity(z[a], z[b], dim=0) / temperature)  # noqa: E731
    total = 0.0
    for a in range(2 * n):
        suspected = [b for b in range(2 * n) if suspects[image(a), image(b)]]
        positives = [(a + n) % (2 * n)] + (suspected if mode == "attract" else [])
        kept = [b for b in range(2 * n) if b != a and not (mode == "cancel" and b in suspected)]
        denominator = sum(sim(a, b) for b in kept)
        total = total - sum(torch.log(sim(a, p) / denominator) for p in positives) / len(positives)
    return total / (2 * n)


@pytest.mark.parametrize("mode", ["cancel", "attract"])
def test_suspects_in_the_loss_match_the_transcription_on_four_images(mode):
    g = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    suspects = torch.tensor([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)  # a chain
    got = nt_xent(z1, z2, 0.5, false_negatives=mode, suspects=suspects)
    torch.testing.assert_close(got, reference(z1, z2, 0.5, suspects, mode))
    assert not torch.isclose(got, nt_xent(z1, z2, 0.5))
    none = torch.zeros(4, 4, dtype=torch.bool)
    torch.testing.assert_close(nt_xent(z1, z2, 0.5, false_negatives=mode, suspects=none), nt_xent(z1, z2, 0.5))


def test_the_detector_is_off_during_the_warm_up_and_records_pairs_by_dataset_index():
    z1, z2 = two_groups(torch.Generator().manual_seed(1))
    batch = np.array([10, 11, 12, 20, 21, 22])
    detector = NeighbourDetector(n=2, warmup_epochs=1)
    detector.start_epoch(1)
    assert detector(z1, z2, batch) is None and len(detector.flagged_pairs()) == 0
    detector.start_epoch(2)
    assert detector(z1, z2, batch) is not None
    assert detector(z1, z2, batch + 100) is not None  # the epoch's second batch adds its own pairs
    pairs = {tuple(pair) for pair in detector.flagged_pairs().tolist()}
    first = {(10, 11), (10, 12), (11, 12), (20, 21), (20, 22), (21, 22)}
    assert pairs == first | {(a + 100, b + 100) for a, b in first}
    detector.start_epoch(3)
    assert len(detector.flagged_pairs()) == 0


def test_the_diagnostics_score_the_suspects_against_the_true_labels():
    z1, z2 = two_groups(torch.Generator().manual_seed(2))
    true = np.zeros(30, dtype=np.int64)
    true[[10, 11, 20, 21, 22]] = [0, 0, 1, 1, 1]
    true[12] = 1  # image 12 sits among 10 and 11 but is of the other class: two of the six pairs are wrong
    batch = np.array([10, 11, 12, 20, 21, 22])
    detector = NeighbourDetector(n=2, warmup_epochs=0)
    diagnostics = SuspectDiagnostics(true, detector)
    detector.start_epoch(1)
    detector(z1, z2, batch)
    got = diagnostics([batch])
    same_class = 1 + 6  # (10, 11) and the four images of class 1
    assert got["same_class_pairs_per_batch"] == same_class
    assert got["pseudo_pair_precision"] == pytest.approx(4 / 6)
    assert got["same_class_negatives_per_batch"] == same_class - 4
    assert 0 < got["false_negatives_removed"] < 1
    assert SuspectDiagnostics(None, detector)([batch]) == {}


def test_a_warming_up_detector_leaves_the_step_plain_nt_xent():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8))
    images = torch.rand(8, 3, 4, 4)
    batch = np.arange(8)

    def step(suspects):
        torch.manual_seed(1)  # the same augmentation draws for both steps
        make = ContrastiveStep(net, lambda x: x + 0.01 * torch.randn_like(x), lambda idx: images[idx], 0.5, "attract")
        make.suspects = suspects
        return make(batch)["loss"]

    plain = NeighbourDetector(n=1, warmup_epochs=1)
    plain.start_epoch(1)
    torch.testing.assert_close(step(plain), step(None), rtol=0, atol=0)
    plain.start_epoch(2)
    assert not torch.isclose(step(plain), step(None))
