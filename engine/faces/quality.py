"""A face-quality score in [0, 1] from detector confidence, face size and sharpness.

Examiners sort and filter gallery faces by it: a 30-pixel blurry face matches poorly and should not
be trusted like a sharp frontal mugshot.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.types import FaceBox

# Face size (shorter side, pixels in the original image) at which size stops limiting quality.
FULL_SIZE_PX = 112.0
# Variance of the Laplacian of the aligned crop at which blur stops limiting quality.
SHARP_LAPLACIAN_VAR = 120.0


def blur_score(aligned_bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned crop: low means blurred (a standard focus measure)."""
    gray = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def face_quality(box: FaceBox, blur: float) -> float:
    """Combine detector score, size and sharpness multiplicatively (any one weak factor dominates)."""
    x1, y1, x2, y2 = box.bbox
    side = max(0.0, min(x2 - x1, y2 - y1))
    size_f = min(1.0, side / FULL_SIZE_PX)
    sharp_f = min(1.0, blur / SHARP_LAPLACIAN_VAR)
    det_f = float(np.clip(box.det_score, 0.0, 1.0))
    return round(det_f * (0.3 + 0.7 * size_f) * (0.3 + 0.7 * sharp_f), 4)
