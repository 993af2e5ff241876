"""Gallery store, registry, reconciliation, verify and rebuild, without models (faces recorded directly)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine.errors import Cancelled, GalleryError
from engine.gallery import (
    Gallery,
    create_gallery,
    delete_gallery,
    list_galleries,
    open_gallery,
    parse_filter,
)
from engine.gallery.store import FaceRecord, PhotoRecord
from engine.progress import CancelToken


def unit_vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 512)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def record(g: Gallery, path: str, n_faces: int = 1, seed: int = 0) -> list[int]:
    """Record a photo with ``n_faces`` random faces straight into the store (what ingest does per photo)."""
    faces = [FaceRecord((10.0 * i, 0.0, 10.0 * i + 50, 50.0), np.zeros((5, 2), np.float32), 0.9, 0.5 + 0.1 * i,
                        100.0, i == 0, v, b"\xff\xd8jpeg") for i, v in enumerate(unit_vectors(n_faces, seed))]
    new, _ = g.store.record_photo(PhotoRecord(path, f"sha-{path}", 100, 1, "ok" if faces else "no_face"), faces)
    return new


def test_registry_creates_lists_opens_and_deletes_by_name_or_id() -> None:
    a = create_gallery("Mugshots 2024")
    b = create_gallery("Street cams")
    assert [i.name for i in list_galleries()] == ["Mugshots 2024", "Street cams"]
    with open_gallery("mugshots 2024") as g:
        assert g.id == a.id
    with open_gallery(b.id) as g, open_gallery(b.id[:6]) as h:
        assert g.name == h.name == "Street cams"
    with pytest.raises(GalleryError, match="already exists"):
        create_gallery("MUGSHOTS 2024")
    with pytest.raises(GalleryError, match="No gallery called"):
        open_gallery("nope")
    with pytest.raises(GalleryError, match="not a usable"):
        create_gallery("a/b")
    a.close()
    b.close()
    assert delete_gallery("Street cams") == b.id
    assert [i.name for i in list_galleries()] == ["Mugshots 2024"]


def test_store_uses_wal_and_records_model_parameters() -> None:
    g = create_gallery("wal")
    mode = sqlite3.connect(g.store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    info = g.info()
    assert info.index["M"] == 32 and info.index["ef_construction"] == 200
    assert info.model_sha256 is None and info.faces == 0


def test_content_version_grows_with_every_change_and_face_ids_are_never_reused(tmp_path: Path) -> None:
    g = create_gallery("versions")
    v0 = g.content_version
    first = record(g, str(tmp_path / "a.jpg"), 2)
    assert g.content_version == v0 + 1
    g.remove([tmp_path / "a.jpg"])
    assert g.content_version == v0 + 2
    second = record(g, str(tmp_path / "b.jpg"), 2, seed=1)
    assert min(second) > max(first)  # AUTOINCREMENT: an index label never comes to mean another face
    new, old = g.store.record_photo(PhotoRecord(str(tmp_path / "b.jpg"), "other", 1, 2, "no_face"), [])
    assert new == [] and old == second
    assert g.store.counts()["faces"] == 0


def test_model_digest_is_adopted_once_and_a_different_one_refused(tmp_path: Path) -> None:
    g = create_gallery("digest")
    g.set_model_sha256("a" * 64)
    g.set_model_sha256("b" * 64)  # no faces yet: the gallery may switch
    record(g, str(tmp_path / "x.jpg"))
    with pytest.raises(GalleryError, match="ArcFace"):
        g.set_model_sha256("c" * 64)
    assert g.model_sha256 == "b" * 64


def test_index_is_reconciled_with_the_store_on_load(tmp_path: Path) -> None:
    g = create_gallery("reconcile")
    ids = record(g, str(tmp_path / "a.jpg"), 3)
    g.index.add(g.store.embeddings(ids), np.asarray(ids))
    g.save_index()
    # After the save: faces committed but never indexed (a crash before the next save) ...
    later = record(g, str(tmp_path / "b.jpg"), 2, seed=5)
    # ... and a face removed from the store while the saved index still holds it.
    gone = g.store.remove_photos(g.store.photo_ids_for_paths([str(tmp_path / "a.jpg")]))[:1]
    g.close()
    with Gallery(g.dir) as again:
        raw = again.verify()
        assert not raw.ok and raw.missing_count == 2 and raw.extra_count == 3
        labels = set(again.index.labels().tolist())  # loading reconciles: the store is the truth
        assert labels == set(later)
        assert gone[0] not in labels
        assert again.verify().ok
    with Gallery(g.dir) as third:  # the reconciled index was saved
        assert third.verify().ok


def test_verify_detects_vectors_that_differ_from_the_store(tmp_path: Path) -> None:
    g = create_gallery("tamper")
    ids = record(g, str(tmp_path / "a.jpg"), 4)
    assert len(g.index) == 4
    g.save_index()
    with g.store.transaction() as c:
        c.execute("UPDATE embeddings SET vector = ? WHERE face_id = ?", (unit_vectors(1, 99)[0].tobytes(), ids[0]))
    report = g.verify()
    assert not report.ok and report.sample_mismatched == 1
    g.rebuild()
    assert g.verify().ok


def test_verify_reports_a_missing_index_file(tmp_path: Path) -> None:
    g = create_gallery("nofile")
    record(g, str(tmp_path / "a.jpg"), 2)
    g.close()
    with Gallery(g.dir) as again:
        report = again.verify()
    assert not report.ok and "the index file is missing" in report.problems


def test_rebuild_compacts_deletions_and_cancel_keeps_the_old_index(tmp_path: Path) -> None:
    g = create_gallery("rebuild")
    for i in range(5):
        record(g, str(tmp_path / f"{i}.jpg"), 2, seed=i)
    _ = g.index
    g.remove([tmp_path / "0.jpg", tmp_path / "1.jpg"])
    assert g.index.deleted_count == 4
    before = g.index_path.read_bytes()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        g.rebuild(cancel=token)
    assert g.index_path.read_bytes() == before
    events = []
    g.rebuild(progress=events.append, M=8)
    assert g.index.deleted_count == 0 and len(g.index) == 6
    assert g.info().index["M"] == 8 and events[-1].done == 6
    assert g.verify().ok


def test_filters_parse_and_select_faces_by_metadata(tmp_path: Path) -> None:
    g = create_gallery("filters")
    paths = [tmp_path / f"p{i}.jpg" for i in range(4)]
    for i, p in enumerate(paths):
        record(g, str(p), 2, seed=i)
    csv = tmp_path / "meta.csv"
    csv.write_text("path,subject_id,sex,birth_year,source,date,scar\n"
                   "p0.jpg,S1,M,1980,DMV,2020-01-02,left cheek\n"
                   "p1.jpg,S1,m,1980,DMV,2021-05-06,\n"
                   f"{paths[2]},S2,female,1995,Booking,2019-03-04,none\n")
    report = g.import_metadata(csv)
    assert report.imported == 3 and not report.errors

    def photos(*filters: str) -> set[str]:
        ids = g.store.filtered_face_ids([parse_filter(f) for f in filters])
        return {Path(i.path).name for i in g.store.face_infos(ids.tolist()).values()}

    assert photos("sex=M") == {"p0.jpg", "p1.jpg"}
    assert photos("sex=f") == {"p2.jpg"}
    assert photos("birth_year>=1990") == {"p2.jpg"}
    assert photos("source!=DMV") == {"p2.jpg"}  # p3 has no metadata: unknown never matches
    assert photos("date<2021-01-01", "sex=M") == {"p0.jpg"}
    assert photos("scar=left cheek") == {"p0.jpg"}
    assert photos("primary=yes", "subject_id=S1") == {"p0.jpg", "p1.jpg"}
    assert len(g.store.filtered_face_ids([parse_filter("primary=1")])) == 4
    for bad, why in (("birth_year>=soon", "number"), ("primary>1", "yes/no"), ("noop", "Cannot read")):
        with pytest.raises(GalleryError, match=why):
            parse_filter(bad)


def test_bad_metadata_rows_abort_the_import_with_row_numbers(tmp_path: Path) -> None:
    from engine.gallery import MetadataError

    g = create_gallery("badmeta")
    for i in range(3):
        record(g, str(tmp_path / f"p{i}.jpg"), 1, seed=i)
    csv = tmp_path / "meta.csv"
    csv.write_text("path;subject_id;sex;birth_year;date\n"
                   "p0.jpg;S1;M;1980;2020-01-01\n"
                   "p1.jpg;S2;Q;1980;2020-01-01\n"
                   "missing.jpg;S3;F;1990;2020-01-01\n"
                   "p2.jpg;S4;F;19x0;2020-01-01\n"
                   "p0.jpg;S5;F;1990;2020-01-01\n"
                   "p2.jpg;S6;F;1990;yesterday\n")
    v = g.content_version
    with pytest.raises(MetadataError) as err:
        g.import_metadata(csv)
    rows = dict(err.value.errors)
    assert sorted(rows) == [3, 4, 5, 6, 7]
    assert "sex" in rows[3] and "import the photo first" in rows[4] and "birth_year" in rows[5]
    assert "row 2" in rows[6] and "date" in rows[7]
    assert g.store.counts()["with_metadata"] == 0 and g.content_version == v
    report = g.import_metadata(csv, skip_bad=True)
    assert report.imported == 1 and len(report.errors) == 5
    no_path = tmp_path / "nopath.csv"
    no_path.write_text("name,sex\nx,M\n")
    with pytest.raises(GalleryError, match="no 'path'"):
        g.import_metadata(no_path)
