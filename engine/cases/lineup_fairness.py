"""Line-up fairness: how far the suspect sits from the fillers in face space, and a mock-witness simulation.

Why two measures: a line-up is unfair when the suspect stands out, either in appearance (the fillers
resemble each other more than they resemble the suspect) or against the description (only the suspect
fits what the witness said, so anyone given the description alone would pick him). Both are measured
on every line-up, recorded with it, and shown in the case report.

1. Face-space distinctiveness. With d(a, b) = 1 − cos(a, b) between unit ArcFace vectors, s the suspect
   and f_1..f_N the fillers:

       D_s = (1/N) Σ_i d(s, f_i)                         (the suspect's mean distance to the fillers)
       D_f = (2 / (N(N−1))) Σ_{i<j} d(f_i, f_j)          (the fillers' mean distance to each other)
       R   = D_s / D_f                                   (distinctiveness ratio)

   R ≈ 1: the suspect is as far from the fillers as they are from each other; R < 1: the fillers were
   chosen around him; R > 1: he sits apart. Warning at R ≥ :data:`RATIO_WARN` (a chosen threshold,
   not validated on witnesses).

2. Mock witnesses (Doob & Kirshenbaum, 1973; functional size: Wells, Leippe & Ostrom, 1979; effective
   size E': Tredoux, 1998, "Statistical inference on measures of lineup fairness", Law and Human
   Behavior 22(2)). M simulated mock witnesses never saw the culprit; each is given the description
   and remembers each described field independently with probability p = :data:`RECALL`, then picks
   uniformly among the members fitting every field remembered (all members when none fits). With
   c_k the number choosing member k (Σ c_k = M) and p_k = c_k / M:

       E'  = 1 / Σ_k p_k²                                (Tredoux's effective size; N+1 when fair)
       functional size = M / c_suspect                   (Wells et al.; N+1 when fair)

   Warning when the suspect's share c_suspect / M is at least :data:`SHARE_WARN_FACTOR` times the
   fair share 1 / (N+1) (equivalently functional size ≤ (N+1) / 2). The simulation runs from the
   line-up's recorded seed, so its figures are reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

RATIO_WARN = 1.2
SHARE_WARN_FACTOR = 2.0
RECALL = 0.8
MOCK_WITNESSES = 1000
FORMULAS = {
    "distinctiveness": "d = 1 − cos; D_s = mean_i d(suspect, filler_i); D_f = mean_{i<j} d(filler_i, filler_j); "
                       f"R = D_s / D_f; warning at R ≥ {RATIO_WARN}",
    "mock_witness": f"{MOCK_WITNESSES} mock witnesses each recall every described field with probability {RECALL} "
                    "and choose uniformly among members fitting what they recall (all when none fits); "
                    "E' = 1 / Σ p_k² (Tredoux 1998); functional size = M / c_suspect (Wells, Leippe & Ostrom 1979); "
                    f"warning when the suspect's share ≥ {SHARE_WARN_FACTOR} × 1/(N+1)",
}


def distinctiveness(suspect: np.ndarray, fillers: np.ndarray) -> dict[str, float | None]:
    """D_s, D_f and R (see the module docstring) of unit vectors; needs at least two fillers (R None when D_f = 0)."""
    s = np.asarray(suspect, dtype=np.float64)
    f = np.asarray(fillers, dtype=np.float64)
    n = len(f)
    d_s = float(np.mean(1.0 - f @ s))
    sims = f @ f.T
    iu = np.triu_indices(n, 1)
    d_f = float(np.mean(1.0 - sims[iu]))
    return {"suspect_to_fillers": d_s, "fillers_to_each_other": d_f, "ratio": d_s / d_f if d_f > 0 else None}


def fits(metadata: Mapping[str, Any], description: Mapping[str, str]) -> bool:
    """Whether a member's metadata holds every described value (case-insensitive)."""
    return all(str(metadata.get(k, "")).strip().casefold() == str(v).strip().casefold()
               for k, v in description.items())


def mock_witnesses(members: Sequence[Mapping[str, Any]], description: Mapping[str, str], suspect_index: int,
                   seed: int, m: int = MOCK_WITNESSES) -> dict[str, Any]:
    """Simulate ``m`` mock witnesses (module docstring); returns counts, E', functional size, suspect share."""
    rng = np.random.default_rng(seed)
    fields = list(description)
    n = len(members)
    fit = np.array([[str(mm.get(k, "")).strip().casefold() == str(description[k]).strip().casefold()
                     for k in fields] for mm in members], dtype=bool).reshape(n, len(fields))
    counts = np.zeros(n, dtype=np.int64)
    for _ in range(m):
        recalled = rng.random(len(fields)) < RECALL
        ok = fit[:, recalled].all(axis=1) if recalled.any() else np.ones(n, dtype=bool)
        pool = np.flatnonzero(ok) if ok.any() else np.arange(n)
        counts[int(rng.choice(pool))] += 1
    p = counts / m
    c_s = int(counts[suspect_index])
    return {"mock_witnesses": m, "recall": RECALL, "counts": [int(c) for c in counts],
            "effective_size": float(1.0 / float(np.sum(p ** 2))),
            "functional_size": float(m / c_s) if c_s else None,  # undefined when no mock witness chose him
            "suspect_share": c_s / m, "fair_share": 1.0 / n}


def assess(suspect: np.ndarray, fillers: np.ndarray, members: Sequence[Mapping[str, Any]],
           description: Mapping[str, str], suspect_index: int, seed: int) -> tuple[dict[str, Any], str]:
    """Both measures and the warning text ('' when the suspect does not stand out)."""
    dist = distinctiveness(suspect, fillers)
    mock = mock_witnesses(members, description, suspect_index, seed)
    warnings = []
    ratio = dist["ratio"]
    if ratio is not None and ratio >= RATIO_WARN:
        warnings.append(f"the suspect sits apart from the fillers in face space (R = {ratio:.2f} ≥ "
                        f"{RATIO_WARN}: the fillers resemble each other more than they resemble the suspect)")
    if mock["suspect_share"] >= SHARE_WARN_FACTOR * mock["fair_share"]:
        warnings.append(f"mock witnesses given the description alone pick the suspect {100 * mock['suspect_share']:.0f} % "
                        f"of the time (fair: {100 * mock['fair_share']:.0f} %; functional size "
                        f"{mock['functional_size']:.1f}, E' {mock['effective_size']:.1f} of {len(members)})")
    warning = ("The suspect stands out: " + "; ".join(warnings) + ".") if warnings else ""
    return {"distinctiveness": dist, "mock_witness": mock, "formulas": FORMULAS}, warning
