"""Ingest with the tiny models: statuses and reasons, skipping unchanged files, updates, cancel, remove."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.errors import Cancelled, GalleryError
from engine.faces import FacePipeline
from engine.gallery import create_gallery, parse_filter
from engine.progress import CancelToken, ProgressEvent
from tests.fixtures.photos import huge_png_header, small_photo_folder


@pytest.fixture
def pipeline(installed_models: Path) -> FacePipeline:
    return FacePipeline.from_models("cpu")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    small_photo_folder(root / "sub", 10)
    (root / "bad").mkdir()
    (root / "bad" / "empty.jpg").write_bytes(b"")
    (root / "bad" / "bomb.png").write_bytes(huge_png_header())
    (root / "notes.txt").write_text("not scanned")
    return root


def test_every_file_is_recorded_with_status_reason_and_one_progress_event(folder: Path, pipeline: FacePipeline) -> None:
    g = create_gallery("ingest")
    events: list[ProgressEvent] = []
    report = g.add([folder], pipeline=pipeline, progress=events.append)
    assert (report.scanned, report.added, report.errors, report.no_face) == (12, 10, 2, 0)
    assert [e.done for e in events] == list(range(1, 13)) and all(e.total == 12 for e in events)
    reasons = {Path(b.path).name: b.reason for b in report.bad}
    assert "empty" in reasons["empty.jpg"] and "30000x30000" in reasons["bomb.png"]
    counts = g.store.counts()
    assert counts["photos"] == 12 and counts["faces"] == report.faces >= 10
    assert g.model_sha256 and g.verify().ok
    primary = g.store.filtered_face_ids([parse_filter("primary=1")])
    assert len(primary) == 10  # one primary face per photo with faces
    thumb = g.thumbnail(int(primary[0]))
    assert thumb is not None and thumb[:2] == b"\xff\xd8"


def test_unchanged_files_are_skipped_and_changed_ones_replaced(folder: Path, pipeline: FacePipeline) -> None:
    g = create_gallery("rerun")
    g.add([folder], pipeline=pipeline)
    v = g.content_version
    again = g.add([folder], pipeline=pipeline)
    assert (again.unchanged, again.added, again.updated) == (12, 0, 0) and g.content_version == v
    photos = sorted((folder / "sub").iterdir())
    # Same bytes, new mtime: the SHA-256 says unchanged.
    os.utime(photos[0], ns=(1, 1_000_000_000))
    # New content under an old name: replaced, its old faces leave the index.
    old_faces = g.store.faces_of_photo(g.store.photo_ids_for_paths([str(photos[1])])[0])
    shutil.copyfile(photos[2], photos[1])
    third = g.add([folder], pipeline=pipeline)
    assert (third.unchanged, third.updated, third.added) == (11, 1, 0)
    live = set(g.index.labels().tolist())
    assert not live & set(old_faces)
    assert g.store.counts()["photos"] == 12 and g.verify().ok


def test_cancel_during_ingest_keeps_what_was_recorded_and_a_rerun_completes(folder: Path,
                                                                           pipeline: FacePipeline) -> None:
    g = create_gallery("cancel")
    token = CancelToken()

    def progress(e: ProgressEvent) -> None:
        if e.done >= 3:
            token.cancel()

    with pytest.raises(Cancelled):
        g.add([folder], pipeline=pipeline, progress=progress, cancel=token, batch=2)
    recorded = g.store.counts()["photos"]
    assert 3 <= recorded < 12
    assert g.verify().ok  # the index was saved on the way out
    report = g.add([folder], pipeline=pipeline)
    assert report.unchanged == recorded and report.added + report.errors == 12 - recorded
    paths = [p for _, p in g.store.photo_paths()]
    assert len(paths) == len(set(paths)) == 12


def test_a_different_arcface_file_is_refused_once_faces_exist(folder: Path, pipeline: FacePipeline) -> None:
    g = create_gallery("mixed")
    g.add([folder / "sub"], pipeline=pipeline)
    g.store.set_meta("model_sha256", "0" * 64)
    extra = folder / "more"
    small_photo_folder(extra, 1, seed=7)
    with pytest.raises(GalleryError, match="ArcFace"):
        g.add([extra], pipeline=pipeline)


def test_remove_rebuild_verify(folder: Path, pipeline: FacePipeline) -> None:
    g = create_gallery("remove")
    g.add([folder], pipeline=pipeline)
    faces_before = g.store.counts()["faces"]
    first = sorted((folder / "sub").iterdir())[0]
    gone = g.store.faces_of_photo(g.store.photo_ids_for_paths([str(first)])[0])
    q = g.store.embeddings(gone[:1])
    report = g.remove([first, folder / "bad"])
    assert (report.photos, report.faces) == (3, len(gone))
    assert g.store.counts()["faces"] == faces_before - len(gone)
    labels, _ = g.index.query(q, k=3)
    assert gone[0] not in labels[0]
    g.rebuild()
    assert g.index.deleted_count == 0 and g.verify().ok
    assert g.remove([folder / "nothing-here.jpg"]).photos == 0


def test_missing_folder_is_a_clear_error(pipeline: FacePipeline, tmp_path: Path) -> None:
    g = create_gallery("missing")
    with pytest.raises(GalleryError, match="neither a folder nor a file"):
        g.add([tmp_path / "nope"], pipeline=pipeline)


def test_stored_embeddings_match_the_pipeline(folder: Path, pipeline: FacePipeline) -> None:
    from engine.faces import load_image

    g = create_gallery("embeddings")
    g.add([folder / "sub"], pipeline=pipeline)
    photo = sorted((folder / "sub").iterdir())[3]
    expected = pipeline.analyze(load_image(photo))
    ids = g.store.faces_of_photo(g.store.photo_ids_for_paths([str(photo)])[0])
    stored = g.store.embeddings(ids)
    assert len(ids) == len(expected)
    assert np.allclose(stored, np.stack([f.embedding for f in expected]), atol=1e-5)
