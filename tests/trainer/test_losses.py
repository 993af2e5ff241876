"""Losses pinned to hand-computed values: margin on the positive only, class sampling, consistency, CORAL."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainer.losses import (
    consistency_loss,
    coral_loss,
    margin_logits,
    prototype_regression,
    sampled_arcface_loss,
    select_classes,
)


def test_margin_is_added_to_the_positive_angle_only() -> None:
    cos = torch.tensor([[0.5, 0.2, -0.1], [0.3, 0.9, 0.0]])
    targets = torch.tensor([0, 1])
    out = margin_logits(cos, targets, scale=10.0, margin=0.5)
    # row 0: theta = acos(0.5) = pi/3; cos(pi/3 + 0.5) = 0.02359...
    assert out[0, 0].item() == pytest.approx(10 * math.cos(math.pi / 3 + 0.5), abs=1e-5)
    assert out[0, 0].item() == pytest.approx(0.23596, abs=1e-4)
    assert out[1, 1].item() == pytest.approx(10 * math.cos(math.acos(0.9) + 0.5), abs=1e-5)
    # every negative is just s * cos
    assert out[0, 1:].tolist() == pytest.approx([2.0, -1.0], abs=1e-6)
    assert out[1, [0, 2]].tolist() == pytest.approx([3.0, 0.0], abs=1e-6)


def test_past_pi_minus_m_the_standard_fallback_keeps_the_positive_logit_decreasing() -> None:
    m = 0.5
    mm = math.sin(math.pi - m) * m  # 0.2397: insightface's easy_margin=False fallback cos - sin(m) * m
    cos = torch.tensor([[-0.99, 0.0], [-0.9, 0.0]])  # both below cos(pi - m) = -0.8776
    out = margin_logits(cos, torch.tensor([0, 0]), scale=4.0, margin=m)
    assert out[0, 0].item() == pytest.approx(4.0 * (-0.99 - mm), abs=1e-5)
    assert out[1, 0].item() == pytest.approx(4.0 * (-0.9 - mm), abs=1e-5)
    no_margin = margin_logits(torch.tensor([[0.3, 0.1]]), torch.tensor([0]), scale=2.0, margin=0.0)
    assert no_margin[0].tolist() == pytest.approx([0.6, 0.2], abs=1e-6)
    below = margin_logits(torch.tensor([[-0.5, 0.0]]), torch.tensor([0]), scale=1.0, margin=0.5)
    assert below[0, 0].item() == pytest.approx(math.cos(2 * math.pi / 3 + 0.5), abs=1e-6)  # -0.8525, no fallback
    # Monotonic: the positive logit never rises as cos falls, across the switch too.
    grid = torch.linspace(0.99, -0.99, 397).unsqueeze(1)
    logits = margin_logits(torch.cat([grid, torch.zeros_like(grid)], 1), torch.zeros(397, dtype=torch.long),
                           scale=1.0, margin=m)[:, 0]
    assert bool((logits[1:] <= logits[:-1] + 1e-7).all())


def test_the_margin_gradient_is_not_zero_past_pi_minus_m() -> None:
    """At cos -0.9, m 0.5 (theta + m > pi) the positive must still be pulled in: dL/dcos < 0, not 0."""
    for c in (-0.9, -0.95, -0.5, 0.3):
        cos = torch.tensor([[c, 0.1, -0.2]], requires_grad=True)
        loss = F.cross_entropy(margin_logits(cos, torch.tensor([0]), scale=16.0, margin=0.5), torch.tensor([0]))
        loss.backward()
        assert cos.grad is not None
        assert cos.grad[0, 0].item() < -0.1, (c, cos.grad)


def test_sampled_loss_over_all_classes_equals_the_hand_computed_cross_entropy() -> None:
    g = torch.Generator().manual_seed(0)
    protos = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    emb = F.normalize(torch.randn(3, 8, generator=g), dim=1)
    labels = torch.tensor([4, 1, 2])
    loss, n_hard = sampled_arcface_loss(emb, labels, protos, k=5, scale=16.0, margin=0.3, semi_hard_fraction=0.0,
                                        gen=torch.Generator().manual_seed(1))
    cos = (emb @ protos.T).numpy().astype(np.float64)
    total = 0.0
    for i, y in enumerate(labels.tolist()):
        logits = 16.0 * cos[i].copy()
        logits[y] = 16.0 * math.cos(math.acos(cos[i, y]) + 0.3)
        total += -(logits[y] - math.log(np.exp(logits).sum()))
    assert n_hard == 0
    assert loss.item() == pytest.approx(total / 3, rel=1e-5)


def test_class_subset_has_every_positive_and_no_positive_among_negatives() -> None:
    g = torch.Generator().manual_seed(0)
    protos = F.normalize(torch.randn(50, 16, generator=g), dim=1)
    emb = F.normalize(torch.randn(6, 16, generator=g), dim=1)
    labels = torch.tensor([7, 3, 7, 40, 0, 22])  # a repeated positive too
    for frac in (0.0, 0.5, 1.0):
        classes, targets, n_hard = select_classes(emb, labels, protos, 20, frac, torch.Generator().manual_seed(2))
        positives = sorted(set(labels.tolist()))
        assert len(classes) == 20 and len(set(classes.tolist())) == 20
        assert classes[:5].tolist() == positives
        assert not set(classes[5:].tolist()) & set(positives)
        assert classes[targets].tolist() == labels.tolist()
        assert n_hard == round(15 * frac)


def test_semi_hard_negatives_are_the_classes_most_similar_to_the_batch() -> None:
    # 10 classes on axes e0..e9; the batch (labels 0 and 1) leans towards classes 5 and 8.
    protos = torch.eye(10)
    emb = F.normalize(torch.tensor([
        [1.0, 0, 0, 0, 0, 0.6, 0, 0, 0.2, 0],
        [0, 1.0, 0, 0, 0, 0.1, 0, 0, 0.5, 0.05],
    ]), dim=1)
    labels = torch.tensor([0, 1])
    classes, _, n_hard = select_classes(emb, labels, protos, k=4, semi_hard_fraction=1.0,
                                        gen=torch.Generator().manual_seed(0))
    assert n_hard == 2
    assert classes.tolist() == [0, 1, 5, 8]  # positives, then the two hardest (max over the batch)
    classes, _, n_hard = select_classes(emb, labels, protos, k=5, semi_hard_fraction=0.34,
                                        gen=torch.Generator().manual_seed(0))
    assert n_hard == 1 and classes[2].item() == 5  # hardest first, the rest random
    assert classes[3:].tolist() != [] and not set(classes[3:].tolist()) & {0, 1, 5}


def test_subset_never_shrinks_below_the_positives() -> None:
    protos = torch.eye(6)
    emb = torch.eye(6)[:4]
    classes, targets, _ = select_classes(emb, torch.arange(4), protos, 2, 0.5, torch.Generator().manual_seed(0))
    assert classes.tolist() == [0, 1, 2, 3] and targets.tolist() == [0, 1, 2, 3]


def test_consistency_and_regression_are_one_minus_cosine() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert consistency_loss(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert consistency_loss(a, b).item() == pytest.approx((0 + 1 + 2) / 3, abs=1e-6)
    assert prototype_regression(a, b).item() == pytest.approx(1.0, abs=1e-6)
    teacher = b.clone().requires_grad_(True)
    consistency_loss(a.clone().requires_grad_(True), teacher).backward()
    assert teacher.grad is None  # the teacher is a target, never trained through this loss


def test_coral_of_identical_distributions_is_zero_and_pinned_on_a_small_case() -> None:
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
    assert coral_loss(x, x.clone()).item() == 0.0
    assert coral_loss(x, x[torch.randperm(32)]).item() == pytest.approx(0.0, abs=1e-10)
    src = torch.tensor([[0.0, 0.0], [2.0, 0.0]])   # mean (1, 0), unbiased cov [[2, 0], [0, 0]]
    tgt = torch.tensor([[0.0, 0.0], [0.0, 2.0]])   # mean (0, 1), unbiased cov [[0, 0], [0, 2]]
    assert coral_loss(src, tgt).item() == pytest.approx(2.0 + 8.0)
