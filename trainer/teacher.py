"""The frozen ArcFace teacher: photo prototypes (one unit 512-D vector per identity), cached on disk.

Photos go through ``engine.faces`` exactly as gallery photos do (SCRFD detection, 5-point alignment to
the 112 template, ArcFace), so the sketch encoder learns the very space the galleries are indexed in.
A photo without a detectable face falls back to a centred crop; those are counted and reported.
The cache ``arcface_prototypes.npz`` stores ids, vectors, the ArcFace file's SHA-256 and each photo's
SHA-256: any change recomputes just what changed, and a different ArcFace recomputes everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import models
from engine.faces import ALIGNED_SIZE, DETECTOR_ID, RECOGNIZER_ID, FacePipeline, centre_crop, load_image
from engine.fsutil import atomic_path, sha256_file
from trainer.config import TeacherConfig
from trainer.data import Pair

CACHE_NAME = "arcface_prototypes.npz"


@dataclass
class Prototypes:
    """Unit ArcFace vectors of the identities' photos, with how they were obtained."""

    ids: list[str]
    vectors: np.ndarray
    arcface_sha256: str
    fallback_ids: list[str] = field(default_factory=list)
    computed: int = 0
    reused: int = 0

    def index(self) -> dict[str, int]:
        return {k_id: k for k, k_id in enumerate(self.ids)}

    def take(self, ids: list[str]) -> np.ndarray:
        pos = self.index()
        return self.vectors[[pos[i] for i in ids]]


def arcface_path(cfg: TeacherConfig) -> Path:
    return Path(cfg.arcface_onnx) if cfg.arcface_onnx else models.model_path(RECOGNIZER_ID)


def build_pipeline(cfg: TeacherConfig) -> FacePipeline:
    """The teacher's face pipeline: the configured or the installed detector and ArcFace."""
    det = Path(cfg.detector_onnx) if cfg.detector_onnx else models.model_path(DETECTOR_ID)
    return FacePipeline(det, arcface_path(cfg), device=cfg.device, det_size=cfg.det_size, det_thresh=cfg.det_thresh)


def _read_cache(path: Path, arcface_sha: str) -> dict[str, tuple[str, np.ndarray, bool]]:
    """id -> (photo sha256, vector, fell back) from a cache written for the same ArcFace file; else empty."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["arcface_sha256"]) != arcface_sha:
                return {}
            ids, shas, vecs, fb = z["ids"], z["photo_sha256"], z["vectors"], z["fallback"]
            return {str(i): (str(s), np.asarray(v, np.float32), bool(f)) for i, s, v, f in zip(ids, shas, vecs, fb,
                                                                                              strict=True)}
    except (OSError, KeyError, ValueError):
        return {}  # a damaged cache is rebuilt


def embed_photo(pipeline: FacePipeline, path: Path) -> tuple[np.ndarray, bool]:
    """ArcFace crop of a photo: aligned on the largest face's landmarks, else a centred crop (True)."""
    bgr = load_image(path)
    boxes = pipeline.detect(bgr)
    if boxes:
        return pipeline.align(bgr, boxes[0]), False
    return centre_crop(bgr, ALIGNED_SIZE), True


def compute_prototypes(pairs: list[Pair], cfg: TeacherConfig, cache_path: Path,
                       on_progress: Callable[[int, int], None] | None = None, batch: int = 32) -> Prototypes:
    """Prototypes for every pair's photo, reusing cached vectors whose photo and ArcFace are unchanged."""
    arc_sha = sha256_file(arcface_path(cfg))
    cached = _read_cache(cache_path, arc_sha)
    photo_sha = {p.id: sha256_file(p.real) for p in pairs}
    todo = [p for p in pairs if p.id not in cached or cached[p.id][0] != photo_sha[p.id]]
    fresh: dict[str, tuple[np.ndarray, bool]] = {}
    if todo:
        pipeline = build_pipeline(cfg)
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            crops, fell = zip(*(embed_photo(pipeline, p.real) for p in chunk), strict=True)
            vecs = pipeline.embed(list(crops))
            for p, v, f in zip(chunk, vecs, fell, strict=True):
                fresh[p.id] = (v, f)
            if on_progress is not None:
                on_progress(min(start + batch, len(todo)), len(todo))
    ids = [p.id for p in pairs]
    vectors = np.stack([fresh[i][0] if i in fresh else cached[i][1] for i in ids]).astype(np.float32)
    fallback = [i for i in ids if (fresh[i][1] if i in fresh else cached[i][2])]
    protos = Prototypes(ids, vectors, arc_sha, fallback, computed=len(fresh), reused=len(ids) - len(fresh))
    if fresh or set(cached) != set(ids):
        with atomic_path(cache_path) as tmp, open(tmp, "wb") as f:
            np.savez(f, ids=np.array(ids), photo_sha256=np.array([photo_sha[i] for i in ids]),
                     vectors=vectors, fallback=np.array([i in set(fallback) for i in ids]),
                     arcface_sha256=np.array(arc_sha))
    return protos
