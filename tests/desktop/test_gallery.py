"""Galleries in the GUI: cancel an import midway, corrupt photos as error rows, thumbnails, missing models."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from sketchface_desktop.views.first_run import FirstRunGuide
from sketchface_desktop.views.gallery_view import PathRole, ReasonRole, StatusRole
from sketchface_desktop.workers import JobState
from tests.desktop.conftest import wait_idle, wait_job

pytestmark = pytest.mark.gui


def new_gallery(qtbot, w, name: str = "Mugshots") -> None:  # type: ignore[no-untyped-def]
    wait_job(qtbot, w.hub, w.gallery.create_gallery(name))
    wait_idle(qtbot, w.hub)
    assert w.gallery.current_id is not None


def test_add_folder_can_be_cancelled_midway(qtbot, window, installed_models, make_photos) -> None:
    w = window
    folder = make_photos(150)
    new_gallery(qtbot, w)
    job = w.gallery.add_folder(str(folder))
    row = w.jobs.row_for(job)
    assert row is not None, "the import is listed in the jobs panel"
    qtbot.waitUntil(lambda: job.last_progress.done >= 10, timeout=60_000)
    row.cancel_button.click()
    wait_idle(qtbot, w.hub, timeout=60_000)
    assert job.state is JobState.CANCELLED
    assert w.errors.shown == [], "cancelling is silent"
    stored = w.gallery.info().photos
    assert 10 <= stored < 150, f"{stored} photos stored: cancel must stop midway and keep what was done"
    assert w.gallery.model.rowCount() == stored
    # The row hears "finished" through its own queued connection, possibly an event after the hub.
    qtbot.waitUntil(lambda: "Cancelled" in row.full_message, timeout=10_000)
    resumed = w.gallery.add_folder(str(folder))
    wait_idle(qtbot, w.hub, timeout=120_000)
    assert resumed.state is JobState.DONE and resumed.value.unchanged == stored and resumed.value.added == 150 - stored


def test_corrupt_photo_is_an_error_row_not_a_crash(qtbot, window, installed_models, make_photos) -> None:
    w = window
    folder = make_photos(3)
    (folder / "truncated.jpg").write_bytes((folder / "person_0000.jpg").read_bytes()[:200])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image at all")
    flat = folder / "blank_wall.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(flat), np.full((120, 160, 3), 200, np.uint8))
    new_gallery(qtbot, w)
    job = w.gallery.add_folder(str(folder))
    wait_idle(qtbot, w.hub, timeout=60_000)
    assert job.state is JobState.DONE and w.errors.shown == []
    model = w.gallery.model
    qtbot.waitUntil(lambda: model.rowCount() == 7)
    rows = {Path(model.index(i).data(PathRole)).name: (model.index(i).data(StatusRole), model.index(i).data(ReasonRole))
            for i in range(model.rowCount())}
    for name in ("truncated.jpg", "empty.png", "notes.jpg"):
        status, reason = rows[name]
        assert status == "error" and reason, f"{name}: {rows[name]}"
    assert rows["empty.png"][1].find("empty") >= 0
    assert rows["blank_wall.png"][0] == "no_face"
    assert rows["person_0001.jpg"][0] == "ok"
    w.gallery.status_filter.setCurrentIndex(3)  # "Errors"
    assert model.rowCount() == 3
    assert {model.index(i).data(StatusRole) for i in range(3)} == {"error"}


def test_gallery_view_loads_face_thumbnails_lazily(qtbot, window, installed_models, make_photos) -> None:
    w = window
    new_gallery(qtbot, w)
    wait_job(qtbot, w.hub, w.gallery.add_folder(str(make_photos(5))))
    wait_idle(qtbot, w.hub)
    w.tabs.setCurrentWidget(w.gallery)
    model = w.gallery.model
    qtbot.waitUntil(lambda: model.rowCount() == 5)
    w.gallery.view.viewport().repaint()
    qtbot.waitUntil(lambda: model.data(model.index(0), 1) is not None, timeout=10_000)
    pixmap = model.data(model.index(0), 1)
    assert pixmap.width() == 112 and pixmap.height() == 112


def test_missing_model_shows_the_guide_not_a_traceback(qtbot, window, make_photos, monkeypatch) -> None:
    w = window
    new_gallery(qtbot, w)
    job = w.gallery.add_folder(str(make_photos(2)))  # no models installed in this test's home
    wait_idle(qtbot, w.hub, timeout=60_000)
    assert job.state is JobState.FAILED
    guide = w.dialogs.guide
    assert isinstance(guide, FirstRunGuide) and guide.isVisible()
    assert "not installed" in guide.findChild(type(guide.cards[0].children()[1]), "GuideReason").text()
    assert {c.objectName() for c in guide.cards} >= {"Missing:buffalo_l.det_10g", "Missing:buffalo_l.w600k_r50"}
    assert not [b for b in w.findChildren(QMessageBox) if b.objectName() == "EngineErrorDialog" and b.isVisible()]
    guide.close()
    w.sketch.canvas.draw_stroke([(100, 100), (300, 300)])
    w.flow.search_sketch()
    assert w.dialogs.guide is not guide and w.dialogs.guide.isVisible(), "search without models opens the guide too"
    assert w.errors.shown == []
    assert "missing" in w.status.models_label.text()


def test_metadata_csv_filters_verify_rebuild_and_remove(qtbot, window, installed_models, make_photos) -> None:
    w = window
    folder = make_photos(6)
    csv = folder.parent / "people.csv"
    csv.write_text("path,subject_id,sex\n" + "".join(
        f"{p.name},S{i},{'MF'[i % 2]}\n" for i, p in enumerate(sorted(folder.glob("*.jpg")))), encoding="utf-8")
    new_gallery(qtbot, w)
    wait_job(qtbot, w.hub, w.gallery.add_folder(str(folder)))
    wait_idle(qtbot, w.hub)
    wait_job(qtbot, w.hub, w.gallery.import_csv(str(csv)))
    wait_idle(qtbot, w.hub)
    assert w.gallery.info().with_metadata == 6 and "6 of 6" in w.status.currentMessage()

    w.sketch.canvas.draw_stroke([(150, 150), (450, 500)], size=10)
    w.results.filters.setText("sex=F")
    w.flow.search_sketch()
    wait_idle(qtbot, w.hub, timeout=60_000)
    rows = w.results_model.rows
    assert rows and {r.subject_id for r in rows} <= {"S1", "S3", "S5"}, "the filter keeps only sex=F photos"

    verify = w.gallery.verify()
    wait_idle(qtbot, w.hub)
    assert verify.value.ok and "verified" in w.status.currentMessage()
    rebuild = w.gallery.rebuild()
    wait_idle(qtbot, w.hub)
    assert rebuild.state is JobState.DONE

    view = w.gallery.view
    view.selectionModel().select(w.gallery.model.index(0), view.selectionModel().SelectionFlag.Select)
    removed = w.gallery.remove_selected()
    wait_idle(qtbot, w.hub)
    assert removed.value.photos == 1
    qtbot.waitUntil(lambda: w.gallery.model.rowCount() == 5)
    assert w.errors.shown == []


class FakeGallery:
    """Stands in for an engine Gallery with 50,000 photos: counts every thumbnail read."""

    id = "fake000000000"

    def __init__(self) -> None:
        self.reads = 0
        self.store = self

    def faces_of_photo(self, photo_id: int) -> list[int]:
        self.reads += 1
        return [photo_id]

    def thumbnail(self, face_id: int) -> bytes | None:
        return None


def test_fifty_thousand_photos_scroll_without_reading_them_all(qtbot, window) -> None:
    import time

    from sketchface_desktop.views.gallery_view import PhotoRow

    w = window
    w.tabs.setCurrentWidget(w.gallery)
    rows = [PhotoRow(i, f"/photos/p{i:06d}.jpg", ("ok", "no_face", "error")[i % 50 == 0 and 2 or (i % 17 == 0)],
                     "cannot decode" if i % 50 == 0 else "") for i in range(1, 50_001)]
    fake = FakeGallery()
    started = time.perf_counter()
    w.gallery.model.set_gallery(fake, rows)
    view = w.gallery.view
    view.viewport().repaint()
    view.scrollToBottom()
    view.viewport().repaint()
    view.scrollTo(w.gallery.model.index(25_000))
    view.viewport().repaint()
    elapsed = time.perf_counter() - started
    wait_idle(qtbot, w.hub)
    assert w.gallery.model.rowCount() == 50_000
    assert elapsed < 1.5, f"showing and scrolling 50,000 photos took {elapsed:.2f} s"
    assert 0 < fake.reads < 400, f"{fake.reads} thumbnails read: only the visible ones should be"
    w.gallery.status_filter.setCurrentIndex(3)
    assert w.gallery.model.rowCount() == 1000


def test_a_new_gallery_never_shows_the_previous_ones_photos(qtbot, window, installed_models, make_photos) -> None:
    w = window
    new_gallery(qtbot, w, "First")
    wait_job(qtbot, w.hub, w.gallery.add_folder(str(make_photos(3))))
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.gallery.model.rowCount() == 3)
    new_gallery(qtbot, w, "Second")
    assert w.gallery.info().name == "Second"
    assert w.gallery.model.rowCount() == 0 and (w.gallery.model.gallery is None
                                                or w.gallery.model.gallery.id == w.gallery.current_id)
