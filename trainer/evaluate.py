"""Retrieval and verification metrics: Recall@1 (full and val-only gallery), CMC, TPR at fixed FPR.

The gallery is the identities' ArcFace photo prototypes, i.e. exactly what a real gallery holds; the
queries are the validation identities' sketches, never seen in training.
"""

from __future__ import annotations

import numpy as np

from engine.validate.stats import cmc as cmc_of_ranks


def cmc(queries: np.ndarray, gallery: np.ndarray, truth: np.ndarray, max_rank: int = 50) -> np.ndarray:
    """Cumulative match characteristic: ``out[r-1]`` = share of queries whose match is in the top r.

    Args:
        queries: (Q, D) unit vectors.
        gallery: (G, D) unit vectors.
        truth: (Q,) index of each query's true match in ``gallery``.
        max_rank: ranks 1..max_rank (clipped to G).
    """
    sims = queries @ gallery.T
    true_sim = sims[np.arange(len(truth)), truth]
    # rank = 1 + number of gallery items strictly more similar than the true one (ties favour the truth)
    rank = 1 + (sims > true_sim[:, None]).sum(axis=1)
    return cmc_of_ranks(rank, min(max_rank, gallery.shape[0]))  # the engine's one CMC


def tpr_at_fpr(queries: np.ndarray, gallery: np.ndarray, truth: np.ndarray, negatives_per_query: int,
               fprs: tuple[float, ...] = (1e-2, 1e-3), seed: int = 0) -> dict[str, float]:
    """Verification: TPR of genuine (sketch, own photo) pairs at thresholds set on sampled impostor pairs.

    Each query is paired with up to ``negatives_per_query`` random other identities; the threshold for
    an FPR is the impostor-score quantile. Note the resolution: with N impostor pairs FPR steps are
    1/N, so FPR 1e-3 needs well over 1,000 impostor pairs to mean anything.
    """
    rng = np.random.default_rng(seed)
    n_q, n_g = len(truth), gallery.shape[0]
    genuine = np.einsum("qd,qd->q", queries, gallery[truth])
    impostors = []
    for q in range(n_q):
        k = min(negatives_per_query, n_g - 1)
        cand = rng.choice(n_g - 1, size=k, replace=False)
        cand = cand + (cand >= truth[q])  # skip the true identity
        impostors.append(gallery[cand] @ queries[q])
    imp = np.concatenate(impostors) if impostors else np.zeros(0)
    out: dict[str, float] = {"impostor_pairs": float(imp.size)}
    for fpr in fprs:
        if imp.size == 0:
            out[f"tpr@fpr={fpr:g}"] = float("nan")
            continue
        thr = float(np.quantile(imp, 1.0 - fpr, method="higher"))
        out[f"tpr@fpr={fpr:g}"] = float((genuine > thr).mean())
    return out


def retrieval_report(val_emb: np.ndarray, val_ids: list[str], all_ids: list[str], all_protos: np.ndarray,
                     max_rank: int = 50, negatives_per_query: int = 1000, seed: int = 0) -> dict[str, object]:
    """All evaluation numbers for validation sketch embeddings against the prototype galleries."""
    pos = {i: k for k, i in enumerate(all_ids)}
    truth_full = np.array([pos[i] for i in val_ids])
    val_protos = all_protos[truth_full]
    curve = cmc(val_emb, all_protos, truth_full, max_rank)
    val_curve = cmc(val_emb, val_protos, np.arange(len(val_ids)), max_rank)
    report: dict[str, object] = {
        "recall@1_full": float(curve[0]),
        "recall@1_val": float(val_curve[0]),
        "chance@1_val": 1.0 / max(1, len(val_ids)),
        "queries": len(val_ids),
        "gallery_full": len(all_ids),
        "cmc_full": [round(float(v), 6) for v in curve],
    }
    for r in (5, 10, 20, 50):
        if r <= len(curve):
            report[f"recall@{r}_full"] = float(curve[r - 1])
    report.update(tpr_at_fpr(val_emb, all_protos, truth_full, negatives_per_query, seed=seed))
    # mean_cos_true alone also rises when the encoder only learns where prototypes lie on average
    # (CORAL and regression pull every sketch towards the prototypes' mean): it rises even with
    # prototypes shuffled between identities. Its excess over the mean cosine to the other val
    # identities' prototypes is what only identity information can raise.
    cos_val = val_emb @ val_protos.T
    true = np.diag(cos_val)
    n = len(val_ids)
    impostor = (cos_val.sum(axis=1) - true) / max(1, n - 1)
    report["mean_cos_true"] = float(np.mean(true))
    report["cos_true_minus_impostor"] = float(np.mean(true - impostor)) if n > 1 else 0.0
    return report


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``hits / n`` ((0, 1) when n is 0).

    Why Wilson: with the ~50-100 held-out identities of an agency's split, a rate of 0.2 is 10-20
    hits; the normal approximation's interval then leaves [0, 1] or is far too narrow near 0.
    """
    if n <= 0:
        return 0.0, 1.0
    p = hits / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def held_out_report(emb: np.ndarray, ids: list[str], all_ids: list[str], all_protos: np.ndarray,
                    negatives_per_query: int = 1000, seed: int = 0) -> dict[str, object]:
    """Test-split figures with Wilson intervals: R@1 and R@10 in the split's gallery and the full one, TPR@FPR.

    Each rate is a share of the ``len(ids)`` queries (TPR: of their genuine pairs), so its interval is
    a binomial one over that many trials.
    """
    pos = {i: k for k, i in enumerate(all_ids)}
    truth_full = np.array([pos[i] for i in ids])
    n = len(ids)
    own = cmc(emb, all_protos[truth_full], np.arange(n), 10)
    full = cmc(emb, all_protos, truth_full, 10)
    rates = {"recall@1": float(own[0]), "recall@10": float(own[min(9, len(own) - 1)]),
             "recall@1_full": float(full[0]), "recall@10_full": float(full[min(9, len(full) - 1)])}
    rates.update({k: v for k, v in tpr_at_fpr(emb, all_protos, truth_full, negatives_per_query, seed=seed).items()
                  if k.startswith("tpr@")})
    out: dict[str, object] = {"queries": n, "gallery": n, "gallery_full": len(all_ids), "chance@1": 1.0 / max(1, n)}
    for key, rate in rates.items():
        hits = int(round(rate * n)) if np.isfinite(rate) else 0
        out[key] = rate
        out[f"{key}_ci95"] = list(wilson_interval(hits, n))
    return out
