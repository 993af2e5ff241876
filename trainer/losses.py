"""Losses of the recipe: sampled ArcFace softmax (true margin), consistency, prototype regression, CORAL.

All take L2-normalised embeddings and the frozen ArcFace prototypes (the classifier weights: the
student is pulled into ArcFace's own space, not into a space of its own).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def select_classes(emb: torch.Tensor, labels: torch.Tensor, protos: torch.Tensor, k: int,
                   semi_hard_fraction: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Pick the softmax's class subset: all positives, then semi-hard and random negatives, up to ``k``.

    Semi-hard negatives are the non-positive classes most similar to the current batch (max cosine
    over the batch's embeddings): the confusable identities. The rest of the negative slots are filled
    with uniformly random non-positive classes, so every class keeps being pushed away occasionally.

    Args:
        emb: (B, D) embeddings (only used for similarities; not differentiated).
        labels: (B,) class indices into ``protos``.
        protos: (C, D) class prototypes.
        k: subset size (clipped to C; never smaller than the number of positives).
        semi_hard_fraction: share of the negative slots given to semi-hard negatives.
        gen: CPU generator for the random negatives.

    Returns:
        (class indices (K,), targets (B,) indexing into the subset, number of semi-hard negatives).
    """
    n_classes = protos.shape[0]
    positives = torch.unique(labels)  # sorted
    k = max(min(k, n_classes), positives.numel())
    n_neg = k - positives.numel()
    is_pos = torch.zeros(n_classes, dtype=torch.bool, device=protos.device)
    is_pos[positives] = True
    n_hard = int(round(n_neg * semi_hard_fraction))
    hard = positives.new_empty(0)
    if n_hard > 0:
        with torch.no_grad():
            score = (emb.detach().float() @ protos.float().t()).amax(dim=0)
            score = score.masked_fill(is_pos, float("-inf"))
            hard = torch.topk(score, n_hard).indices
    taken = is_pos.clone()
    taken[hard] = True
    pool = torch.nonzero(~taken).squeeze(1).cpu()
    rand = pool[torch.randperm(pool.numel(), generator=gen)[:n_neg - hard.numel()]].to(protos.device)
    classes = torch.cat([positives, hard, rand])
    targets = torch.searchsorted(positives, labels)  # positives come first, in sorted order
    return classes, targets, int(hard.numel())


def margin_logits(cos: torch.Tensor, targets: torch.Tensor, scale: float, margin: float) -> torch.Tensor:
    """``s * cos`` with the target column replaced by ``s * cos(theta + m)`` (additive angular margin).

    Past ``theta = pi - m`` the margin would carry the angle beyond pi, where ``cos(theta + m)`` turns
    back up (and a cap at pi would make it flat: zero gradient for the worst-placed sketches). There
    the standard ArcFace fallback (insightface, ``easy_margin=False``) is used instead:
    ``cos theta - m * sin(m)``, i.e. ``phi = where(cos > cos(pi - m), cos(theta + m), cos - sin(pi - m) * m)``.
    It is linear in ``cos`` (gradient ``s`` w.r.t. cos, never 0) and never above ``cos(theta + m)``'s
    value at the switch, so the positive logit keeps decreasing as theta grows; the negatives are
    untouched.
    """
    cos = cos.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
    rows = torch.arange(cos.shape[0], device=cos.device)
    pos = cos[rows, targets]
    theta = torch.acos(pos)
    threshold = math.cos(math.pi - margin)
    fallback = pos - math.sin(math.pi - margin) * margin
    target_logit = torch.where(pos > threshold, torch.cos(theta + margin), fallback)
    out = cos.clone()
    out[rows, targets] = target_logit
    return out * scale


def sampled_arcface_loss(emb: torch.Tensor, labels: torch.Tensor, protos: torch.Tensor, *, k: int, scale: float,
                         margin: float, semi_hard_fraction: float, gen: torch.Generator) -> tuple[torch.Tensor, int]:
    """Cross-entropy of the margin logits over the sampled class subset; returns (loss, semi-hard count)."""
    classes, targets, n_hard = select_classes(emb, labels, protos, k, semi_hard_fraction, gen)
    cos = emb.float() @ protos[classes].float().t()
    return F.cross_entropy(margin_logits(cos, targets, scale, margin), targets), n_hard


def consistency_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean-teacher agreement: mean of 1 - cos(student(strong view), EMA teacher(weak view))."""
    return (1.0 - F.cosine_similarity(student.float(), teacher.detach().float(), dim=-1)).mean()


def prototype_regression(emb: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(embedding, its own class prototype): pulls sketches onto their photo's vector."""
    return (1.0 - F.cosine_similarity(emb.float(), targets.float(), dim=-1)).mean()


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distribution alignment: ||mean_s - mean_t||^2 + ||cov_s - cov_t||_F^2 (unbiased covariances).

    Why: the gallery holds millions of ArcFace photo vectors; sketch vectors that sit in a corner of
    the sphere of their own would rank whole regions of the gallery above the true match. Matching
    first and second moments with a sample of prototypes keeps them in the same region.
    """
    s, t = source.float(), target.float()
    mu_s, mu_t = s.mean(0), t.mean(0)
    cs, ct = s - mu_s, t - mu_t
    cov_s = cs.t() @ cs / max(1, s.shape[0] - 1)
    cov_t = ct.t() @ ct / max(1, t.shape[0] - 1)
    return (mu_s - mu_t).pow(2).sum() + (cov_s - cov_t).pow(2).sum()
