"""Frozen value types shared across the engine and its front-ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A detected face in original-image pixel coordinates.

    Attributes:
        bbox: (x1, y1, x2, y2).
        kps: 5x2 landmarks (eyes, nose, mouth corners), the order ArcFace's template expects.
        det_score: detector confidence in [0, 1].
    """

    bbox: tuple[float, float, float, float]
    kps: np.ndarray
    det_score: float

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.bbox
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


@dataclass(frozen=True)
class AlignedFace:
    """A face warped to the 112x112 ArcFace template (BGR uint8), with what it came from."""

    image: np.ndarray
    box: FaceBox
    quality: float


@dataclass(frozen=True)
class DetectedFace:
    """A face of a photo after the full pipeline: box, aligned crop, embedding, quality, primary flag."""

    box: FaceBox
    aligned: np.ndarray
    embedding: np.ndarray
    quality: float
    blur: float
    primary: bool


@dataclass(frozen=True)
class Match:
    """One search result: a gallery face and its cosine similarity to the query.

    ``baseline`` marks results of a sketch query embedded by ArcFace itself (no trained sketch
    encoder installed): a weak baseline that front-ends label as such. ``group_size`` is, when
    results are grouped per subject, how many retrieved candidates belong to this subject.
    ``quality`` and ``bbox`` describe the gallery face (bbox in the photo's pixels).
    """

    rank: int
    score: float
    gallery_id: str
    face_id: int
    photo_id: int
    photo_path: str
    photo_sha256: str
    subject_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    baseline: bool = False
    group_size: int = 1
    gallery_name: str = ""
    quality: float | None = None
    bbox: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "gallery_id": self.gallery_id,
            "face_id": self.face_id,
            "photo_id": self.photo_id,
            "photo_path": self.photo_path,
            "photo_sha256": self.photo_sha256,
            "subject_id": self.subject_id,
            "metadata": self.metadata,
            "baseline": self.baseline,
            "group_size": self.group_size,
            "gallery_name": self.gallery_name,
            "quality": self.quality,
            "bbox": list(self.bbox) if self.bbox is not None else None,
        }
