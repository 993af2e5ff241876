"""Self-tuned HNSW ef: the gallery measures its own recall against an exact scan and keeps the target."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from engine.cli import main
from engine.gallery import create_gallery
from engine.gallery.index import HnswIndex
from engine.gallery.store import FaceRecord, PhotoRecord
from engine.gallery.tuning import EF_LADDER, exact_topk, make_probes, recall_at_k, tune_ef


def _face_like(n: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (identities in a low-dimensional latent), like bench/search.py's photo model."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((24, 512)).astype(np.float32)
    codes = rng.standard_normal((n // 4 + 1, 24)).astype(np.float32)[np.arange(n) % (n // 4 + 1)]
    x = codes @ a + 0.5 * np.linalg.norm(codes @ a, axis=1, keepdims=True) * rng.standard_normal((n, 512)).astype(
        np.float32) / np.sqrt(512)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _batches(x: np.ndarray, step: int = 997):  # type: ignore[no-untyped-def]
    return lambda: ((np.arange(s, min(len(x), s + step)), x[s:s + step]) for s in range(0, len(x), step))


def test_streamed_exact_topk_equals_a_full_scan() -> None:
    x, q = _face_like(3000, 1), _face_like(50, 2)
    full = np.argsort(-(q @ x.T), axis=1)[:, :10]
    streamed = exact_topk(_batches(x, 311)(), q, 10)
    assert recall_at_k(streamed, full) == 1.0


def test_sketch_probes_are_harder_than_photo_probes() -> None:
    x = _face_like(500, 3)
    photo, sketch = make_probes(x)
    cos_photo, cos_sketch = np.sum(photo * x, axis=1).mean(), np.sum(sketch * x, axis=1).mean()
    assert 0.65 < cos_photo < 0.76 and 0.45 < cos_sketch < 0.58


def test_tuning_picks_the_smallest_ef_that_reaches_the_target() -> None:
    x = _face_like(6000, 4)
    index = HnswIndex(512, M=4, ef_construction=16, ef=10, capacity=len(x))  # a weak graph: low ef misses
    index.add(x, np.arange(len(x)))
    sample = x[np.random.default_rng(5).choice(len(x), 150, replace=False)]

    def query(q: np.ndarray, k: int) -> np.ndarray:
        return index.query(q, k)[0]

    result = tune_ef(query, index.set_ef, sample, _batches(x), len(x), target=0.98)
    assert result.reached and min(result.recall_photo, result.recall_sketch) >= 0.98
    assert index.params["ef"] == result.ef
    steps = [e for e in EF_LADDER if e >= 10]
    assert result.ef > steps[0], "the weak graph should need more than the smallest ef"
    lower = steps[steps.index(result.ef) - 1]
    again = tune_ef(query, index.set_ef, sample, _batches(x), len(x), target=0.98, ladder=(lower,))
    assert min(again.recall_photo, again.recall_sketch) < 0.98  # the next smaller ef misses: minimal


def test_an_index_that_cannot_reach_the_target_says_so() -> None:
    x = _face_like(800, 6)
    rng = np.random.default_rng(0)

    def broken(q: np.ndarray, k: int) -> np.ndarray:  # negative control: answers at random
        return rng.choice(len(x), size=(len(q), k))

    result = tune_ef(broken, lambda ef: None, x[:50], _batches(x), len(x))
    assert not result.reached and result.ef == EF_LADDER[-1] and result.recall_photo < 0.5


@pytest.fixture
def stored_gallery():  # type: ignore[no-untyped-def]
    g = create_gallery("Tuned")
    for i, v in enumerate(_face_like(1200, 7)):
        g.store.record_photo(PhotoRecord(f"/p/{i}.jpg", hashlib.sha256(b"%d" % i).hexdigest(), 1, 1, "ok"),
                             [FaceRecord((0, 0, 1, 1), np.zeros((5, 2), np.float32), 0.9, 0.8, 1.0, True, v, b"j")])
    yield g
    g.close()


def test_gallery_retune_is_shown_by_info_and_recorded_for_manifests(stored_gallery, capsys) -> None:  # type: ignore[no-untyped-def]
    g = stored_gallery
    assert g.recall_record() == {}
    g.retune()
    record = g.recall_record()
    assert record["reached"] and record["faces"] == 1200 and record["target"] == 0.99 and record["k"] == 10
    assert g.ef == record["ef"] == g.index.params["ef"]
    assert main(["gallery", "info", "Tuned", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["recall"]["ef"] == info["index"]["ef"] == record["ef"]
    assert info["recall"]["recall_sketch"] >= 0.99


def test_search_uses_the_tuned_ef_and_records_it(stored_gallery) -> None:  # type: ignore[no-untyped-def]
    from engine.gallery.source import hnsw_candidates
    from engine.search.core import build_manifest
    from engine.search.manifest import EmbedderRef

    g = stored_gallery
    g.retune()
    g.index.set_ef(500)  # someone else's explicit ef: a default search goes back to the tuned one
    hnsw_candidates(g, _face_like(1, 9)[0], 20, None, 0)
    assert g.index.params["ef"] == g.ef
    manifest = build_manifest([], EmbedderRef("arcface", "x"), "x", [g], 0, [], 10, False)
    entry = manifest.galleries[0].to_dict()
    assert entry["index"]["ef"] == g.ef and entry["index"]["recall"]["ef"] == g.ef
    assert manifest.index["ef"] == g.ef
