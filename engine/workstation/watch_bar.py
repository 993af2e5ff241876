"""A watch's bar: which new faces become hits (calibrated where a calibration exists, else rank and score).

"Rank <= N" means the new face would enter the top N of the recorded list: its score beats the recorded
N-th score (and at most N new faces are kept per run). A calibrated bar is the score that kept a share of
true matches in the encoder's validation (:mod:`engine.validate.calibration`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.types import Match
from engine.validate import calibration

DEFAULT_SHARE = 0.9


class WatchError(EngineError):
    """A watch cannot be made or run as asked; the message says why and what to do."""

    title = "Watch list"


# -- the bar ---------------------------------------------------------------------------------------
def parse_bar(text: str | None, manifest: Mapping[str, Any], recorded: Sequence[Match]) -> dict[str, Any]:
    """The bar of a new watch from ``--bar``: ``calibrated[:SHARE]`` or ``rank<=N,score>=S`` (either part).

    Without ``--bar``: calibrated (share 0.9) where a calibration exists for the search's encoder, else
    rank <= k of the search, score >= 0, marked uncalibrated.
    """
    cal = calibration.calibration_for(manifest.get("embedder"))
    spec = (text or ("calibrated" if cal is not None else "")).strip().lower()
    if spec.startswith("calibrated"):
        if cal is None:
            raise WatchError("No score calibration exists for this search's encoder, so no calibrated bar can be set.",
                             hint="Give --bar rank<=N,score>=S (shown as uncalibrated), or validate the encoder "
                                  "first (sketchface validate).")
        share = float(spec.partition(":")[2] or DEFAULT_SHARE)
        if not 0.0 < share <= 1.0:
            raise WatchError(f"A calibrated bar keeps a share between 0 and 1 of true matches, not {share}.")
        scores = np.asarray(cal.true_scores, np.float64)
        threshold = float(np.quantile(scores, 1.0 - share, method="lower"))
        return {"kind": "calibrated", "share": share, "threshold": threshold, "rank": None,
                "calibration": cal.encoder_sha256, "n_cases": cal.n_cases}
    rank, score = int(manifest.get("k") or 10), 0.0
    for part in filter(None, (p.strip() for p in spec.replace(" ", "").split(","))):
        key, op, value = (part.partition("<=") if "<=" in part else part.partition(">="))
        try:
            if key == "rank" and op == "<=":
                rank = int(value)
            elif key == "score" and op == ">=":
                score = float(value)
            else:
                raise ValueError(part)
        except ValueError:
            raise WatchError(f"Cannot read the bar {text!r}.",
                             hint="Write calibrated, calibrated:0.9, or rank<=10,score>=0.3.") from None
    if rank < 1:
        raise WatchError(f"The bar's rank must be at least 1, not {rank}.")
    nth = sorted((float(m.score) for m in recorded), reverse=True)
    threshold = max(score, nth[rank - 1]) if len(nth) >= rank else score
    return {"kind": "uncalibrated", "rank": rank, "score": score, "threshold": threshold}


def describe_bar(bar: Mapping[str, Any]) -> str:
    """The bar as an examiner reads it."""
    if bar.get("kind") == "calibrated":
        return (f"calibrated: score >= {bar['threshold']:.3f} (kept {bar['share']:.0%} of true matches in "
                f"{bar.get('n_cases', '?')} validation cases)")
    return f"uncalibrated: rank <= {bar['rank']}, score >= {bar['score']:.3f} (bar {bar['threshold']:.3f})"
