"""What a candidate's score meant in validation: the calibration sentence the results grid shows on hover.

A file read from the digest cache (never a hash), so it is safe in the GUI thread; it lives here so the
results grid shows the sentence without knowing where calibrations are kept.
"""

from __future__ import annotations

from engine.validate.calibration import calibration_note, installed_encoder_sha256


def score_note(score: float, rank: int, baseline: bool) -> str | None:
    """The calibration sentence for a candidate's score and rank, or None when this encoder has none.

    Args:
        score: the candidate's similarity.
        rank: its rank in the list.
        baseline: True when the sketch was embedded by ArcFace itself (its own calibration applies).
    """
    return calibration_note(score, rank, installed_encoder_sha256(baseline))
