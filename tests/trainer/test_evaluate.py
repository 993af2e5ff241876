"""Evaluation metrics on hand-made embeddings: CMC / Recall@1 on both galleries, TPR at fixed FPR."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.evaluate import cmc, retrieval_report, tpr_at_fpr


def _unit(rows: list[list[float]]) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_cmc_counts_the_rank_of_the_true_match() -> None:
    gallery = np.eye(4, dtype=np.float32)
    queries = _unit([[1, 0, 0, 0],        # true 0 at rank 1
                     [0.9, 0.5, 0, 0],    # true 1 at rank 2
                     [0.5, 0.6, 0.4, 0],  # true 2 at rank 3
                     [0, 0, 0, 1]])       # true 3 at rank 1
    curve = cmc(queries, gallery, np.array([0, 1, 2, 3]), max_rank=50)
    assert curve.tolist() == pytest.approx([0.5, 0.75, 1.0, 1.0])  # clipped to the gallery size


def test_recall_against_full_and_val_only_galleries() -> None:
    all_ids = ["a", "b", "c", "d"]
    protos = np.eye(4, dtype=np.float32)
    # val identities c and d; c's sketch is closest to a (a training identity), then to c
    val_emb = _unit([[0.8, 0, 0.6, 0], [0, 0, 0, 1]])
    report = retrieval_report(val_emb, ["c", "d"], all_ids, protos, max_rank=50, negatives_per_query=3)
    assert report["recall@1_full"] == pytest.approx(0.5)   # c loses to a in the full gallery
    assert report["recall@1_val"] == pytest.approx(1.0)    # but wins among val identities only
    assert report["chance@1_val"] == 0.5 and report["gallery_full"] == 4
    assert report["cmc_full"] == pytest.approx([0.5, 1.0, 1.0, 1.0])
    assert report["mean_cos_true"] == pytest.approx((0.6 + 1.0) / 2)


def test_tpr_at_fpr_uses_the_impostor_quantile_as_threshold() -> None:
    rng = np.random.default_rng(0)
    gallery = _unit(rng.standard_normal((200, 16)).tolist())
    truth = np.arange(50)
    queries = gallery[:50].copy()                 # genuine score 1.0 for all
    out = tpr_at_fpr(queries, gallery, truth, negatives_per_query=199, fprs=(1e-2, 1e-3))
    assert out["impostor_pairs"] == 50 * 199
    assert out["tpr@fpr=0.01"] == 1.0 and out["tpr@fpr=0.001"] == 1.0
    swapped = gallery[50:100].copy()              # every "genuine" pair is really another person
    out = tpr_at_fpr(swapped, gallery, truth, negatives_per_query=199, fprs=(1e-2,))
    assert out["tpr@fpr=0.01"] <= 0.1
    sims = np.einsum("qd,qd->q", swapped, gallery[truth])
    assert sims.max() < 1.0
