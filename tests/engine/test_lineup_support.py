"""Shared helpers for the line-up tests: a local gallery with subjects, sex and birth years, and a case
whose search returned one of its faces (the suspect).

The gallery's ArcFace-like vectors are built so metadata shows in face space (as it does in ArcFace):
each vector is a sex direction plus an age-band direction plus the subject's own identity, and a
subject's second photo is the same identity with a little noise. So fillers drawn from another age band
sit measurably apart from the suspect, which the planted fairness test relies on.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
from PIL import Image

from engine.gallery.store import FaceRecord, MetaRecord, PhotoRecord
from engine.types import Match
from engine.workstation import Workstation
from tests.engine.test_cases_support import face_png, new_case

DIM = 512
BANDS = {"20-29": 2000, "30-39": 1990, "50-59": 1970}  # birth year giving that band in 2025
PHOTO_DATE = "2025-06-01"


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(face_png(seed, 112))).convert("RGB").save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def build_gallery(ws: Workstation, name: str = "Mugshots", per_group: int = 30, seed: int = 3,
                  groups: tuple[tuple[str, str], ...] | None = None) -> Any:
    """A local gallery: ``per_group`` subjects per (sex, age band), two photos each except every third."""
    rng = np.random.default_rng(seed)
    g = ws.create_gallery(name)
    dirs = {k: rng.standard_normal(DIM) for k in ("M", "F", *BANDS)}
    groups = groups or tuple((s, b) for s in ("M", "F") for b in BANDS)
    meta_rows = []
    n = 0
    for sex, band in groups:
        for _ in range(per_group):
            n += 1
            ident = rng.standard_normal(DIM) * 1.3
            for photo in range(1 if n % 3 == 0 else 2):
                v = dirs[sex] + dirs[band] + ident + 0.3 * rng.standard_normal(DIM)
                v = (v / np.linalg.norm(v)).astype(np.float32)
                path = f"/photos/{n:04d}_{photo}.jpg"
                face = FaceRecord((0, 0, 100, 100), np.zeros((5, 2), np.float32), 0.9, 0.8, 1.0, True, v,
                                  _jpeg(1000 + 10 * n + photo))
                g.store.record_photo(PhotoRecord(path, hashlib.sha256(path.encode()).hexdigest(), 1, 1, "ok"), [face])
                pid = g.store.photo_ids_for_paths([path])[0]
                meta_rows.append((pid, MetaRecord(f"S{n:04d}", sex, BANDS[band], "booking", PHOTO_DATE)))
    g.store.upsert_metadata(meta_rows)
    return g


def case_with_candidate(g: Any, sex: str = "M", band: str = "30-39", k: int = 3) -> tuple[Any, int, int]:
    """A case whose search returned ``k`` faces of ``g``; the first is a (sex, band) face: the suspect.

    Returns (case, search id, suspect face id).
    """
    infos = g.store.face_infos(g.store.face_ids().tolist())
    pick = [f for f, i in sorted(infos.items()) if i.metadata.get("sex") == sex
            and i.metadata.get("birth_year") == BANDS[band]]
    chosen: list[int] = []
    seen: set[str | None] = set()
    for f in pick:  # one face per subject, as a grouped search returns them
        if infos[f].subject_id not in seen and len(chosen) < k:
            seen.add(infos[f].subject_id)
            chosen.append(f)
    case = new_case()
    query = face_png(2, 128)
    matches = [Match(rank=r, score=0.9 - 0.01 * r, gallery_id=g.id, face_id=f, photo_id=infos[f].photo_id,
                     photo_path=infos[f].path, photo_sha256=infos[f].sha256, subject_id=infos[f].subject_id,
                     metadata={"thumbnail": g.thumbnail(f)}, gallery_name=g.name)
               for r, f in enumerate(chosen, start=1)]
    manifest = {"query": [{"kind": "sketch", "sha256": hashlib.sha256(query).hexdigest(), "weight": 1.0}],
                "embedder": {"kind": "sketch_encoder", "sha256": "e" * 64}, "arcface_sha256": "a" * 64,
                "galleries": [{"id": g.id, "name": g.name, "content_version": g.content_version,
                               "face_count": g.store.face_count()}],
                "index": {"M": 16, "ef_construction": 200, "ef": 200}, "filters": {}, "k": k,
                "group_by_subject": False, "engine_version": "0.1.0"}
    from engine.cases import add_search

    rec = add_search(case, manifest, matches, [query], label="sketch search", user="alice")
    return case, rec.id, chosen[0]
