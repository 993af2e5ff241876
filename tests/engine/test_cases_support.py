"""Shared helpers for the case tests: small generated images and a fake search engine with a gallery.

The fake engine is a real (if tiny) nearest-neighbour search over deterministic vectors, so a re-run
over unchanged data must reproduce the list and adding close faces must change it; it also serves
as the :data:`engine.cases.Rerunner` the tests hand to ``rerun_search``.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from engine.types import Match

DIM = 32


def face_png(seed: int, size: int = 64) -> bytes:
    """A small deterministic face-like drawing (PNG bytes) that differs per seed."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), tuple(int(x) for x in rng.integers(180, 255, 3)))
    d = ImageDraw.Draw(im)
    skin = tuple(int(x) for x in rng.integers(120, 230, 3))
    m = size // 8
    d.ellipse((m, m, size - m, size - m + m // 2), fill=skin, outline=(40, 40, 40))
    eye_y = size * 2 // 5
    for ex in (size * 3 // 8, size * 5 // 8):
        r = max(2, size // 20 + int(rng.integers(0, 3)))
        d.ellipse((ex - r, eye_y - r, ex + r, eye_y + r), fill=(30, 30, 30))
    d.line((size // 2, eye_y + 4, size // 2, size * 3 // 5), fill=(60, 40, 40), width=2)
    d.arc((size // 3, size * 3 // 5, size * 2 // 3, size * 4 // 5), 10, 170, fill=(120, 20, 20), width=2)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def embed(image: bytes) -> np.ndarray:
    """The fake encoder: a unit vector determined by the image bytes."""
    seed = int.from_bytes(hashlib.sha256(image).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=DIM)
    return v / np.linalg.norm(v)


class FakeSearch:
    """A gallery of unit vectors and an exact top-k search that writes a run manifest like the real one."""

    def __init__(self, n: int = 40, seed: int = 7, gallery_id: str = "g1", embedder_sha: str = "e" * 64,
                 arcface_sha: str = "a" * 64, thumbnails: bool = True) -> None:
        self.rng = np.random.default_rng(seed)
        self.gallery_id = gallery_id
        self.content_version = 1
        self.vectors: dict[int, np.ndarray] = {}
        self.embedder_sha = embedder_sha
        self.arcface_sha = arcface_sha
        self.thumbnails = thumbnails
        self._add_random(n)

    def _add_random(self, n: int) -> None:
        start = len(self.vectors) + 1000
        for i in range(n):
            v = self.rng.normal(size=DIM)
            self.vectors[start + i] = v / np.linalg.norm(v)

    def add_faces_like(self, image: bytes, n: int = 3) -> list[int]:
        """Ingest ``n`` new photos that look like the query (they must enter the top of the list)."""
        q = embed(image)
        new = []
        for i in range(n):
            v = q + 0.15 * (i + 1) * self.rng.normal(size=DIM) / np.sqrt(DIM)
            fid = max(self.vectors) + 1
            self.vectors[fid] = v / np.linalg.norm(v)
            new.append(fid)
        self.content_version += 1
        return new

    def manifest(self, images: list[bytes], k: int, kinds: list[str] | None = None) -> dict[str, Any]:
        kinds = kinds or ["sketch"] * len(images)
        return {
            "query": [{"kind": kind, "sha256": hashlib.sha256(b).hexdigest(), "weight": 1.0}
                      for kind, b in zip(kinds, images, strict=True)],
            "embedder": {"kind": "sketch_encoder", "sha256": self.embedder_sha},
            "arcface_sha256": self.arcface_sha,
            "galleries": [{"id": self.gallery_id, "name": "Mugshots 2026", "content_version": self.content_version,
                           "face_count": len(self.vectors)}],
            "index": {"M": 16, "ef_construction": 200, "ef": 200},
            "filters": {"sex": "M"},
            "k": k,
            "group_by_subject": False,
            "engine_version": "0.1.0",
        }

    def _matches(self, images: list[bytes], k: int) -> list[Match]:
        q = sum(embed(b) for b in images)
        q = q / np.linalg.norm(q)
        ids = sorted(self.vectors)
        scores = np.array([float(self.vectors[i] @ q) for i in ids])
        order = np.argsort(-scores, kind="stable")[:k]
        out = []
        for rank, j in enumerate(order, start=1):
            fid = ids[int(j)]
            meta: dict[str, Any] = {"source": "fake"}
            if self.thumbnails:
                meta["thumbnail"] = face_png(fid, 48)
            out.append(Match(rank=rank, score=float(scores[j]), gallery_id=self.gallery_id, face_id=fid,
                             photo_id=fid, photo_path=f"/photos/person_{fid}.jpg",
                             photo_sha256=hashlib.sha256(str(fid).encode()).hexdigest(),
                             subject_id=f"S{fid % 97}", metadata=meta, gallery_name="Mugshots 2026",
                             quality=0.9, bbox=(1.0, 2.0, 30.0, 40.0)))
        return out

    def search(self, images: list[bytes], k: int = 10) -> tuple[dict[str, Any], list[Match]]:
        return self.manifest(images, k), self._matches(images, k)

    def __call__(self, manifest: dict[str, Any], images: list[bytes]) -> tuple[dict[str, Any], list[Match]]:
        """The Rerunner protocol: repeat ``manifest`` against the gallery as it is now."""
        for q, b in zip(manifest["query"], images, strict=True):
            assert hashlib.sha256(b).hexdigest() == q["sha256"]
        k = int(manifest["k"])
        new = self.manifest(images, k, [q["kind"] for q in manifest["query"]])
        new["filters"] = manifest["filters"]
        return new, self._matches(images, k)


def new_case(number: str = "2026-0042", **kw: Any) -> Any:
    """A fresh case with an examiner and two witnesses (in the test's own SKETCHFACE_HOME)."""
    from engine.cases import create_case

    kw.setdefault("title", "Robbery at Main Street")
    kw.setdefault("examiner", "Det. Alice")
    kw.setdefault("witnesses", ["W1", "W2"])
    kw.setdefault("user", "alice")
    title = kw.pop("title")
    return create_case(number, title, **kw)


def populated_case(k: int = 10, blind: bool = False) -> tuple[Any, FakeSearch, Any]:
    """A case with one sketch (two versions), one search of ``k`` candidates and a few decisions."""
    from engine.cases import add_search, add_sketch, record_decision

    case = new_case()
    v1 = add_sketch(case, face_png(1, 128), witness="W1", user="alice")
    add_sketch(case, face_png(2, 128), witness="W1", sketch_id=v1.sketch_id, note="wider jaw", user="alice")
    fs = FakeSearch()
    query = face_png(2, 128)
    manifest, matches = fs.search([query], k=k)
    rec = add_search(case, manifest, matches, [query], blind=blind, label="first", user="alice")
    if not blind:
        record_decision(case, rec.id, matches[0].face_id, "possible", note="similar brow", user="alice")
        record_decision(case, rec.id, matches[1].face_id, "excluded", note="too old", user="alice")
    return case, fs, rec
