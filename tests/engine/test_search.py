"""Search with the tiny models through insightface's loading code: identity, galleries, filters, grouping, fusion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.errors import GalleryError, ModelInvalid
from engine.faces import FacePipeline, load_image
from engine.gallery import Gallery, create_gallery
from engine.search import PREFILTER_MAX, Query, Searcher, fuse, manifest_differences, rerun_manifest
from tests.fixtures.photos import small_photo_folder

MANIFEST_KEYS = {"query", "embedder", "arcface_sha256", "galleries", "index", "filters", "k", "group_by_subject",
                 "engine_version"}


@pytest.fixture
def pipeline(installed_models: Path) -> FacePipeline:
    return FacePipeline.from_models("cpu")


@pytest.fixture
def two_galleries(tmp_path: Path, pipeline: FacePipeline) -> tuple[Gallery, Gallery, list[Path], list[Path]]:
    a_photos = small_photo_folder(tmp_path / "a", 12, seed=1)
    b_photos = small_photo_folder(tmp_path / "b", 6, seed=2)
    a, b = create_gallery("A"), create_gallery("B")
    a.add([tmp_path / "a"], pipeline=pipeline)
    b.add([tmp_path / "b"], pipeline=pipeline)
    return a, b, a_photos, b_photos


def test_search_by_photo_returns_the_same_photo_first_with_cosine_one(
        two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]], pipeline: FacePipeline) -> None:
    a, _b, photos, _ = two_galleries
    searcher = Searcher(pipeline)
    for photo in photos[:4]:
        result = searcher.search([Query.from_path(photo, "photo")], [a], k=5)
        top = result.matches[0]
        assert top.photo_path == str(photo) and top.score == pytest.approx(1.0, abs=1e-4)
        assert [m.rank for m in result.matches] == [1, 2, 3, 4, 5]
        assert all(x.score >= y.score for x, y in zip(result.matches, result.matches[1:], strict=False))
        assert not top.baseline and top.gallery_name == "A"


def test_one_shot_search_loads_the_installed_models(two_galleries: tuple[Gallery, ...]) -> None:
    from engine.search import search

    photos = two_galleries[2]
    result = search([Query.from_path(photos[0], "photo")], ["A"], k=1)
    assert result.matches[0].photo_path == str(photos[0])
    assert result.matches[0].score == pytest.approx(1.0, abs=1e-4)


def test_multi_gallery_search_merges_by_exact_score(two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]],
                                                    pipeline: FacePipeline) -> None:
    a, b, _, b_photos = two_galleries
    result = Searcher(pipeline).search([Query.from_path(b_photos[2], "photo")], [a, b, a], k=8)
    assert result.matches[0].gallery_id == b.id and result.matches[0].photo_path == str(b_photos[2])
    assert {m.gallery_id for m in result.matches} == {a.id, b.id}
    assert [g["id"] for g in result.manifest["galleries"]] == [a.id, b.id]  # duplicates searched once
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    q = result.query_vector
    for m in result.matches:  # exact re-rank: the score is the cosine to the stored embedding
        owner = a if m.gallery_id == a.id else b
        assert m.score == pytest.approx(float(owner.store.embeddings([m.face_id])[0] @ q), abs=1e-5)


def _metadata(g: Gallery, photos: list[Path], tmp_path: Path) -> None:
    lines = ["path,subject_id,sex,birth_year"]
    for i, p in enumerate(photos):
        lines.append(f"{p},S{i // 3},{'F' if i % 2 else 'M'},{1970 + i}")
    (tmp_path / "meta.csv").write_text("\n".join(lines) + "\n")
    g.import_metadata(tmp_path / "meta.csv")


def test_filters_give_the_same_results_by_numpy_prefilter_and_by_hnsw_callback(
        two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]], pipeline: FacePipeline,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, _, photos, _ = two_galleries
    _metadata(a, photos, tmp_path)
    searcher = Searcher(pipeline)
    query = [Query.from_path(photos[0], "photo")]
    assert PREFILTER_MAX > 0
    exact = searcher.search(query, [a], k=6, filters=["sex=F", "birth_year>=1973"])
    assert exact.matches and all(m.metadata["sex"] == "F" and m.metadata["birth_year"] >= 1973
                                 for m in exact.matches)
    assert photos[0] not in [Path(m.photo_path) for m in exact.matches]  # photo 0 is M
    monkeypatch.setattr("engine.gallery.source.PREFILTER_MAX", 0)
    monkeypatch.setattr("engine.gallery.source.PREFILTER_FRACTION", 0.0)
    calls: list[int] = []
    real_query = a.index.query

    def spy(vectors: np.ndarray, k: int, allowed: object = None) -> tuple[np.ndarray, np.ndarray]:
        calls.append(k)
        assert allowed is not None
        return real_query(vectors, k, allowed)  # type: ignore[arg-type]

    monkeypatch.setattr(a.index, "query", spy)
    graph = searcher.search(query, [a], k=6, filters=["sex=F", "birth_year>=1973"], mode="hnsw")
    assert calls, "the hnswlib filter callback path was not taken"
    assert [m.face_id for m in graph.matches] == [m.face_id for m in exact.matches]
    assert exact.manifest["filters"] == ["sex=F", "birth_year>=1973"]


def test_grouping_gives_one_row_per_subject(two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]],
                                            pipeline: FacePipeline, tmp_path: Path) -> None:
    a, _, photos, _ = two_galleries
    _metadata(a, photos, tmp_path)
    searcher = Searcher(pipeline)
    flat = searcher.search([Query.from_path(photos[0], "photo")], [a], k=10)
    grouped = searcher.search([Query.from_path(photos[0], "photo")], [a], k=3, group_by_subject=True)
    subjects = [m.subject_id for m in grouped.matches]
    assert len(subjects) == 3 and len(set(subjects)) == 3
    assert grouped.matches[0].subject_id == "S0" and grouped.matches[0].photo_path == str(photos[0])
    assert grouped.matches[0].group_size > 1  # three photos, up to two faces each, share subject S0
    assert len({m.subject_id for m in flat.matches}) < len(flat.matches)  # ungrouped lists repeat subjects
    assert grouped.manifest["group_by_subject"] is True


def test_fusion_ranks_by_weighted_mean_cosine() -> None:
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((3, 512)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    gallery = rng.standard_normal((500, 512)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    w = np.array([1.0, 0.5, 2.0], np.float32)
    fused = fuse(queries, w)
    assert np.linalg.norm(fused) == pytest.approx(1.0, abs=1e-6)
    mean_cos = (gallery @ queries.T) @ w / w.sum()
    assert np.array_equal(np.argsort(-(gallery @ fused))[:20], np.argsort(-mean_cos)[:20])
    with pytest.raises(GalleryError):
        fuse(queries, [1.0, 0.0, 1.0])
    with pytest.raises(GalleryError, match="cancel"):
        fuse(np.stack([queries[0], -queries[0]]))


def test_fused_photo_queries_find_both_photos(two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]],
                                              pipeline: FacePipeline) -> None:
    a, _, photos, _ = two_galleries
    result = Searcher(pipeline).search([Query.from_path(photos[1], "photo"), Query.from_path(photos[5], "photo", 1.0)],
                                       [a], k=12)
    paths = [m.photo_path for m in result.matches]
    assert str(photos[1]) in paths[:4] and str(photos[5]) in paths[:4]
    assert [q["weight"] for q in result.manifest["query"]] == [1.0, 1.0]


def test_galleries_embedded_with_another_arcface_file_are_refused(
        two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]], pipeline: FacePipeline) -> None:
    a, b, photos, _ = two_galleries
    b.store.set_meta("model_sha256", "f" * 64)
    with pytest.raises(ModelInvalid, match="gallery 'B' belongs to ArcFace"):  # the one refusal, one type
        Searcher(pipeline).search([Query.from_path(photos[0], "photo")], [a, b], k=3)


def test_sketch_without_trained_encoder_uses_the_labelled_arcface_baseline(
        two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]], pipeline: FacePipeline) -> None:
    import shutil

    from engine import paths

    shutil.rmtree(paths.models_dir() / "sketch_encoder", ignore_errors=True)
    a, _, photos, _ = two_galleries
    result = Searcher(pipeline).search([Query.from_path(photos[0], "sketch")], [a], k=3)
    assert result.baseline and all(m.baseline for m in result.matches) and result.notes
    assert result.manifest["embedder"]["kind"] == "arcface_baseline"
    assert result.manifest["embedder"]["sha256"] == result.manifest["arcface_sha256"]


def test_an_installed_trained_sketch_encoder_is_used_instead_of_the_baseline(
        two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]], pipeline: FacePipeline) -> None:
    from engine import paths
    from engine.fsutil import sha256_file

    weights = paths.models_dir() / "sketch_encoder" / "model.safetensors"
    if not weights.exists():
        pytest.skip("the tiny model set has no sketch encoder")
    a, _, photos, _ = two_galleries
    result = Searcher(pipeline).search([Query.from_path(photos[0], "sketch")], [a], k=3)
    assert not result.baseline and not any(m.baseline for m in result.matches)
    assert result.manifest["embedder"] == {"kind": "sketch_encoder", "sha256": sha256_file(weights)}
    assert np.linalg.norm(result.query_vector) == pytest.approx(1.0, abs=1e-5)


class FakeEncoder:
    """A stand-in trained encoder: maps any sketch to a fixed vector."""

    is_baseline = False
    model_sha256 = "e" * 64
    backend = "test"

    def __init__(self, target: np.ndarray, arcface_sha256: str) -> None:
        self.target, self.arcface_sha256 = target, arcface_sha256

    def embed(self, image_bgr: np.ndarray, face_box: object = None) -> np.ndarray:
        return self.target


def test_a_trained_encoder_is_used_and_recorded_and_an_incompatible_one_refused(
        two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]], pipeline: FacePipeline) -> None:
    a, _, photos, _ = two_galleries
    target_face = int(a.store.face_ids()[7])
    target = a.store.embeddings([target_face])[0]
    arcface = Searcher(pipeline).arcface_sha256
    result = Searcher(pipeline, FakeEncoder(target, arcface)).search(
        [Query.from_path(photos[0], "sketch")], [a], k=2)
    assert result.matches[0].face_id == target_face and not result.baseline
    assert result.manifest["embedder"] == {"kind": "sketch_encoder", "sha256": "e" * 64}
    with pytest.raises(ModelInvalid, match="sketch encoder's training belongs to ArcFace"):
        Searcher(pipeline, FakeEncoder(target, "1" * 64)).search([Query.from_path(photos[0], "sketch")], [a], k=2)


def test_manifest_is_complete_json_and_rerun_reproduces_the_list(
        two_galleries: tuple[Gallery, Gallery, list[Path], list[Path]], pipeline: FacePipeline,
        tmp_path: Path) -> None:
    a, b, photos, _ = two_galleries
    _metadata(a, photos, tmp_path)
    searcher = Searcher(pipeline)
    queries = [Query.from_path(photos[2], "photo", 2.0), Query.from_path(photos[3], "sketch", 0.5)]
    result = searcher.search(queries, [a, b], k=7, filters=["birth_year>=1971"], ef=64)
    m = json.loads(json.dumps(result.manifest))
    assert set(m) >= MANIFEST_KEYS
    assert m["query"][0] == {"kind": "photo", "sha256": queries[0].sha256, "weight": 2.0}
    assert m["index"] == {"M": 32, "ef_construction": 200, "ef": 64, "mode": "exact"} and m["k"] == 7
    assert m["galleries"][0]["content_version"] == a.content_version
    assert m["galleries"][0]["face_count"] == a.store.counts()["faces"]
    data = [q.data for q in queries]
    again, matches = rerun_manifest(m, data, searcher=searcher, strict=True)
    assert [x.face_id for x in matches] == [x.face_id for x in result.matches]
    assert [x.score for x in matches] == pytest.approx([x.score for x in result.matches])
    assert manifest_differences(m, again) == []
    with pytest.raises(GalleryError, match="not the one"):
        rerun_manifest(m, [data[1], data[0]], searcher=searcher)
    small_photo_folder(tmp_path / "more", 2, seed=9)
    b.add([tmp_path / "more"], pipeline=pipeline)
    changed, _ = rerun_manifest(m, data, searcher=searcher)
    assert any("Gallery B: content_version" in d for d in manifest_differences(m, changed))
    with pytest.raises(GalleryError, match="cannot be repeated exactly"):
        rerun_manifest(m, data, searcher=searcher, strict=True)


def test_query_without_a_face_and_unreadable_query_are_clear_errors(
        two_galleries: tuple[Gallery, ...], pipeline: FacePipeline, tmp_path: Path) -> None:
    from engine.errors import BadImage, NoFaceFound

    a = two_galleries[0]
    flat = tmp_path / "flat.png"
    import cv2

    cv2.imwrite(str(flat), np.full((200, 200, 3), 90, np.uint8))
    with pytest.raises(NoFaceFound):
        Searcher(pipeline).search([Query.from_path(flat, "photo")], [a], k=3)
    with pytest.raises(BadImage):
        Searcher(pipeline).search([Query("photo", b"not an image")], [a], k=3)
    assert load_image(flat).shape == (200, 200, 3)
