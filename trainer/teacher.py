"""The frozen ArcFace teacher: photo prototypes (one unit 512-D vector per identity), cached on disk.

Photos go through ``engine.faces`` exactly as gallery photos do (SCRFD detection, 5-point alignment to
the 112 template, ArcFace), so the sketch encoder learns the very space the galleries are indexed in.
A photo that cannot be decoded, or (by default) shows no detectable face, is skipped with its pair and
listed; ``data.no_face = "centre_crop"`` uses a centred crop of it instead.
The cache ``arcface_prototypes.npz`` stores ids, vectors, the ArcFace file's SHA-256 and each photo's
SHA-256: any change recomputes just what changed, and a different ArcFace recomputes everything.
In a distributed run each machine may hold a different cache (no shared file system): the ranks
agree on what to embed and share the vectors only some of them hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import models
from engine.errors import EngineError
from engine.faces import ALIGNED_SIZE, DETECTOR_ID, RECOGNIZER_ID, FacePipeline, centre_crop, load_image
from engine.fsutil import atomic_path, sha256_file
from trainer.config import TeacherConfig
from trainer.data import Pair

CACHE_NAME = "arcface_prototypes.npz"


# Status of a photo in the cache: "ok" (aligned on its face), "no_face" (no face found: its vector is
# a centred crop's), "unreadable" (not decodable; never cached, so a fixed file is retried).
OK, NO_FACE, UNREADABLE = "ok", "no_face", "unreadable"
Entry = tuple[str, np.ndarray, str]  # (photo sha256, vector, status)


@dataclass
class Prototypes:
    """Unit ArcFace vectors of the usable identities' photos, with what was skipped and why."""

    ids: list[str]
    vectors: np.ndarray
    arcface_sha256: str
    fallback_ids: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    computed: int = 0
    reused: int = 0
    computed_here: int = 0  # by this rank (its shard)

    def index(self) -> dict[str, int]:
        return {k_id: k for k, k_id in enumerate(self.ids)}

    def take(self, ids: list[str]) -> np.ndarray:
        pos = self.index()
        return self.vectors[[pos[i] for i in ids]]


def arcface_path(cfg: TeacherConfig) -> Path:
    return Path(cfg.arcface_onnx) if cfg.arcface_onnx else models.model_path(RECOGNIZER_ID)


def detector_path(cfg: TeacherConfig) -> Path:
    return Path(cfg.detector_onnx) if cfg.detector_onnx else models.model_path(DETECTOR_ID)


def build_pipeline(cfg: TeacherConfig) -> FacePipeline:
    """The teacher's face pipeline: the configured or the installed detector and ArcFace."""
    return FacePipeline(detector_path(cfg), arcface_path(cfg), device=cfg.device, det_size=cfg.det_size,
                        det_thresh=cfg.det_thresh)


def part_paths(cache_path: Path) -> list[Path]:
    """Per-rank partial caches of a distributed run (``<stem>.rank<N>.npz``)."""
    return sorted(cache_path.parent.glob(f"{cache_path.stem}.rank*.npz"))


def _read_one(path: Path, arcface_sha: str) -> dict[str, Entry]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["arcface_sha256"]) != arcface_sha:
                return {}
            ids, shas, vecs, fb = z["ids"], z["photo_sha256"], z["vectors"], z["fallback"]
            status = z["status"] if "status" in z.files else np.where(fb, NO_FACE, OK)
            return {str(i): (str(s), np.asarray(v, np.float32), str(st))
                    for i, s, v, st in zip(ids, shas, vecs, status, strict=True)}
    except (OSError, KeyError, ValueError, EOFError):
        return {}  # a damaged cache (a kill mid-write of an old version) is rebuilt


def read_cache(path: Path, arcface_sha: str) -> dict[str, Entry]:
    """id -> (photo sha256, vector, status) from the cache (and partial caches) for the same ArcFace file."""
    out: dict[str, Entry] = {}
    for part in part_paths(path):
        out.update(_read_one(part, arcface_sha))
    out.update(_read_one(path, arcface_sha))
    return out


def write_cache(path: Path, entries: dict[str, Entry], arcface_sha: str) -> None:
    """Write the cache atomically (a kill mid-write leaves the previous file intact)."""
    ids = sorted(i for i, e in entries.items() if e[2] != UNREADABLE)
    dim = next((entries[i][1].shape[0] for i in ids), 512)
    vectors = np.stack([entries[i][1] for i in ids]).astype(np.float32) if ids else np.zeros((0, dim), np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, ids=np.array(ids, dtype=str), photo_sha256=np.array([entries[i][0] for i in ids], dtype=str),
                 vectors=vectors, fallback=np.array([entries[i][2] == NO_FACE for i in ids], dtype=bool),
                 status=np.array([entries[i][2] for i in ids], dtype=str), arcface_sha256=np.array(arcface_sha))


def embed_photo(pipeline: FacePipeline, path: Path) -> tuple[np.ndarray, bool]:
    """ArcFace crop of a photo: aligned on the largest face's landmarks, else a centred crop (True)."""
    bgr = load_image(path)
    boxes = pipeline.detect(bgr)
    if boxes:
        return pipeline.align(bgr, boxes[0]), False
    return centre_crop(bgr, ALIGNED_SIZE), True


def _photo_sha(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError:
        return ""


def _embed_chunk(pipeline: FacePipeline, chunk: list[Pair], shas: dict[str, str]) -> dict[str, Entry]:
    crops, kept, status = [], [], {}
    for p in chunk:
        try:
            crop, fell = embed_photo(pipeline, p.real)
        except EngineError:  # BadImage: truncated, not an image, too large
            status[p.id] = UNREADABLE
            continue
        crops.append(crop)
        kept.append(p)
        status[p.id] = NO_FACE if fell else OK
    out: dict[str, Entry] = {p.id: (shas[p.id], np.zeros(0, np.float32), UNREADABLE)
                             for p in chunk if status[p.id] == UNREADABLE}
    if crops:
        for p, v in zip(kept, pipeline.embed(crops), strict=True):
            out[p.id] = (shas[p.id], np.asarray(v, np.float32), status[p.id])
    return out


# A placeholder entry: "this rank has no valid vector for the id" (only its key travels).
_LACKING: Entry = ("", np.zeros(0, np.float32), "lacking")


def _agree_todo(pairs: list[Pair], valid: dict[str, Entry],
                gather: Callable[[dict[str, Entry]], dict[str, Entry]]) -> tuple[list[Pair], dict[str, Entry]]:
    """The photos no rank holds (to embed, the same list on every rank) and the vectors some rank can share.

    Why: without a shared file system every machine has its own prototype cache, and the caches
    differ (a rank that joined later has none). A to-do list built from the local cache alone
    differs between ranks, so the shards ``todo[rank::world]`` miss photos and ranks lack vectors
    that only another rank's cache held. Two all-gathers make the decision collective: first which
    ids any rank lacks, then the valid vectors other ranks hold for them.

    Returns:
        (pairs that must be embedded, in ``pairs`` order; vectors shared by the ranks for lacking ids).
    """
    lacking = gather({p.id: _LACKING for p in pairs if p.id not in valid})
    shared = gather({i: valid[i] for i in lacking if i in valid})
    return [p for p in pairs if p.id in lacking and p.id not in shared], shared


def compute_prototypes(pairs: list[Pair], cfg: TeacherConfig, cache_path: Path,
                       on_progress: Callable[[int, int], None] | None = None, batch: int = 32, *,
                       no_face: str = "skip", rank: int = 0, world: int = 1,
                       gather: Callable[[dict[str, Entry]], dict[str, Entry]] | None = None,
                       save_every_s: float = 30.0) -> Prototypes:
    """Prototypes for every pair's photo, reusing cached vectors whose photo and ArcFace are unchanged.

    The cache is written as it goes (every ``save_every_s`` seconds), so a run killed while embedding
    thousands of photos resumes where it stopped. In a distributed run the ranks first agree on what
    to embed (see :func:`_agree_todo`: each rank's local cache may differ, no shared file system is
    needed), each rank embeds its share (``todo[rank::world]``), saves its progress in its own partial
    cache, and ``gather`` (an all-gather, required when ``world > 1``) gives every rank all results.

    Args:
        no_face: "skip" a pair whose photo shows no detectable face, or use a "centre_crop" of it.
    """
    if world > 1 and gather is None:
        raise ValueError("compute_prototypes: a distributed run (world > 1) needs the all-gather function")
    arc_sha = sha256_file(arcface_path(cfg))
    cached = read_cache(cache_path, arc_sha)
    shas = {p.id: _photo_sha(p.real) for p in pairs}
    valid = {p.id: cached[p.id] for p in pairs if shas[p.id] and p.id in cached and cached[p.id][0] == shas[p.id]}
    shared: dict[str, Entry] = {}
    if gather is not None:
        todo, shared = _agree_todo(pairs, valid, gather)
    else:
        todo = [p for p in pairs if p.id not in valid]
    mine = todo[rank::world]
    own_cache = cache_path if world == 1 else cache_path.with_name(f"{cache_path.stem}.rank{rank}.npz")
    fresh: dict[str, Entry] = {}
    if mine:
        pipeline = build_pipeline(cfg)
        last_save = time.monotonic()
        for start in range(0, len(mine), batch):
            fresh.update(_embed_chunk(pipeline, mine[start:start + batch], shas))
            if on_progress is not None:
                on_progress(min(start + batch, len(mine)), len(mine))
            if time.monotonic() - last_save >= save_every_s and start + batch < len(mine):
                write_cache(own_cache, {**cached, **fresh} if world == 1 else fresh, arc_sha)
                last_save = time.monotonic()
    if gather is not None:
        fresh = gather(fresh)
    entries = {**cached, **shared, **fresh}
    ids_all = [p.id for p in pairs]
    skipped = {i: entries[i][2] for i in ids_all if entries[i][2] == UNREADABLE or not shas[i]}
    skipped.update({i: NO_FACE for i in ids_all if i not in skipped and entries[i][2] == NO_FACE and no_face == "skip"})
    ids = [i for i in ids_all if i not in skipped]
    dim = next((entries[i][1].shape[0] for i in ids), 512)
    vectors = np.stack([entries[i][1] for i in ids]).astype(np.float32) if ids else np.zeros((0, dim), np.float32)
    fallback = [i for i in ids if entries[i][2] == NO_FACE]
    protos = Prototypes(ids, vectors, arc_sha, fallback, skipped, computed=len(fresh), reused=len(ids_all) - len(fresh),
                        computed_here=len(mine))
    if rank == 0 and (fresh or set(valid) != set(ids_all) or set(cached) != set(ids_all)):
        write_cache(cache_path, {i: entries[i] for i in ids_all}, arc_sha)
    if world > 1:
        own_part = cache_path.with_name(f"{cache_path.stem}.rank{rank}.npz")
        own_part.unlink(missing_ok=True)
    return protos
