"""Identity check of generated faces, and face crops for FaceID Plus, through the ArcFace face pipeline.

Generation only takes plain callables (``image -> embedding | None``, ``image, size -> crop``) so tests
and other front-ends can pass their own; :class:`FaceTools` provides both from :mod:`engine.faces`.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import ModelMissing

log = logging.getLogger(__name__)

IdentityFn = Callable[[np.ndarray], "np.ndarray | None"]
"""BGR uint8 image -> unit 512-D ArcFace embedding of its primary face, or None when there is no face."""

FaceCropFn = Callable[[np.ndarray, int], np.ndarray]
"""BGR uint8 image, size -> size x size BGR crop of its face (aligned when landmarks are found)."""


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else 0.0


class FaceTools:
    """ArcFace identity embedding and aligned face crops, loading the face pipeline on first use.

    Args:
        device: "auto", "cuda" or "cpu" for onnxruntime.
        pipeline: an already loaded ``engine.faces.FacePipeline`` to share (else one is loaded).
    """

    def __init__(self, device: str = "auto", pipeline: Any = None) -> None:
        self.device = device
        self._pipeline = pipeline
        self._lock = threading.Lock()
        self.unavailable: str = ""

    def _fp(self) -> Any:
        with self._lock:
            if self._pipeline is None:
                from engine.faces import load_pipeline  # lazy: pulls cv2

                self._pipeline = load_pipeline(self.device)
            return self._pipeline

    def available(self) -> bool:
        """Load the face pipeline; False (with ``unavailable`` saying why) when its models are missing."""
        if self.unavailable:
            return False
        try:
            self._fp()
        except ModelMissing as exc:
            self.unavailable = f"Identity check unavailable: {exc}"
            log.warning(self.unavailable)
            return False
        return True

    def digests(self) -> dict[str, dict[str, str]]:
        """SHA-256 of the detector and ArcFace files used (checked at load), for provenance; {} if not loaded."""
        refs = getattr(self._pipeline, "model_files", ()) if self._pipeline is not None else ()
        return {ref.model_id: {ref.file: ref.sha256} for ref in refs}

    def embed(self, bgr: np.ndarray) -> np.ndarray | None:
        """The primary face's unit ArcFace embedding, or None when no face is detected."""
        faces = self._fp().analyze(bgr)
        primary = next((f for f in faces if f.primary), faces[0] if faces else None)
        return None if primary is None else np.asarray(primary.embedding, dtype=np.float32)

    def crop(self, bgr: np.ndarray, size: int = 224) -> np.ndarray:
        """The face aligned to the ArcFace template at ``size`` (as FaceID Plus was trained), else centred."""
        from engine.faces import centre_crop  # lazy: pulls cv2

        fp = self._fp()
        boxes = fp.detect(bgr)
        if not boxes:
            return centre_crop(bgr, size)

        from insightface.utils import face_align

        # insightface aligns only to multiples of 112 or 128: align there, then resize.
        work = size if size % 112 == 0 or size % 128 == 0 else 112 * max(1, -(-size // 112))
        with warnings.catch_warnings():  # insightface calls a deprecated scikit-image API
            warnings.simplefilter("ignore", FutureWarning)
            crop = face_align.norm_crop(bgr, landmark=boxes[0].kps, image_size=work)
        if work == size:
            return crop
        import cv2

        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def score(identity: IdentityFn | None, bgr: np.ndarray, reference: np.ndarray | None) -> tuple[float | None,
                                                                                                  np.ndarray | None]:
    """(cosine to ``reference``, embedding) of an image's face; (None, None) without face or checker."""
    if identity is None:
        return None, None
    emb = identity(bgr)
    if emb is None:
        return None, None
    return (cosine(emb, reference) if reference is not None else None), np.asarray(emb, dtype=np.float32)


def order_by_identity(items: list[Any], key: Callable[[Any], float | None]) -> list[Any]:
    """Best identity score first; items without a score keep their order at the end."""
    scored = [it for it in items if key(it) is not None]
    unscored = [it for it in items if key(it) is None]
    return sorted(scored, key=lambda it: -float(key(it))) + unscored  # type: ignore[arg-type]
