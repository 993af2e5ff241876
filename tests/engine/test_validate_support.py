"""Helpers for validation tests and bench/validate.py: galleries of synthetic vectors written straight into a store.

Embedding thousands of photos would test the face pipeline, not validation; these galleries hold
chosen unit vectors with subject ids and metadata, through the store's own schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.gallery import Gallery, create_gallery
from engine.gallery.store import now_iso


def synthetic_gallery(name: str, vectors: np.ndarray, subjects: Sequence[str | None],
                      metadata: Sequence[dict[str, Any] | None] | None = None,
                      sha256s: Sequence[str] | None = None, model_sha256: str | None = None) -> Gallery:
    """A gallery with one photo and one face per vector (subject id and metadata per face), in one transaction."""
    g = create_gallery(name)
    if model_sha256:
        g.store.set_meta("model_sha256", model_sha256)
    vecs = np.ascontiguousarray(vectors, dtype="<f4")
    meta = metadata or [None] * len(vecs)
    now = now_iso()
    with g.store.transaction() as c:
        for i, vec in enumerate(vecs):
            sha = sha256s[i] if sha256s else f"{i:064x}"
            cur = c.execute("INSERT INTO photos(path, sha256, size, mtime_ns, status, face_count, added)"
                            " VALUES (?, ?, 1, 0, 'ok', 1, ?)", (f"/synthetic/{name}/{i}.jpg", sha, now))
            pid = int(cur.lastrowid or 0)
            cur = c.execute("INSERT INTO faces(photo_id, x1, y1, x2, y2, landmarks, det_score, quality, blur,"
                            " is_primary) VALUES (?, 0, 0, 10, 10, ?, 0.9, 0.9, 100, 1)",
                            (pid, np.zeros((5, 2), "<f4").tobytes()))
            fid = int(cur.lastrowid or 0)
            c.execute("INSERT INTO embeddings(face_id, vector) VALUES (?, ?)", (fid, vec.tobytes()))
            m = dict(meta[i] or {})
            if subjects[i] is not None or m:
                c.execute("INSERT INTO photo_meta(photo_id, subject_id, sex, birth_year, source, date, extras)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (pid, subjects[i], m.pop("sex", None), m.pop("birth_year", None), m.pop("source", None),
                           m.pop("date", None), json.dumps(m, sort_keys=True)))
        c.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'content_version'")
    return g


def orthonormal(n: int, dim: int = 512, seed: int = 0) -> np.ndarray:
    """``n`` orthonormal rows (a random rotation's first rows)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, n)))
    return q.T.astype(np.float32)


def test_synthetic_gallery_stores_vectors_subjects_and_metadata(sketchface_home: Any) -> None:
    vecs = orthonormal(3)
    g = synthetic_gallery("S", vecs, ["a", None, "a"], [{"sex": "F", "region": "north"}, None, None])
    ids = g.store.face_ids()
    assert np.allclose(g.store.embeddings(ids), vecs)
    infos = g.store.face_infos(list(ids))
    assert [infos[int(i)].subject_id for i in ids] == ["a", None, "a"]
    assert infos[int(ids[0])].metadata == {"sex": "F", "region": "north"}
    g.close()
