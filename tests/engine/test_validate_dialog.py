"""Tools > Validate: the dialog runs a validation as a job, shows its plots, adopts its calibration."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.faces import FacePipeline
from engine.gallery import create_gallery
from engine.validate import calibration_note
from tests.engine.test_validate_cli import as_sketch
from tests.engine.test_validate_support import orthonormal, synthetic_gallery
from tests.fixtures.photos import small_photo_folder

pytestmark = pytest.mark.gui
SHOTS = Path("/work/notes/shots")


@pytest.fixture
def hub_and_session(qtbot: Any) -> Iterator[tuple[Any, Any]]:
    from sketchface_desktop.engine_session import EngineSession
    from sketchface_desktop.workers import JobHub

    hub, session = JobHub(), EngineSession()
    yield hub, session
    hub.shutdown()
    session.close()


@pytest.fixture
def cases(installed_models: Path, tmp_path: Path) -> Path:
    photos = small_photo_folder(tmp_path / "gallery", 8, seed=5)
    g = create_gallery("Mugshots")
    g.add([tmp_path / "gallery"], pipeline=FacePipeline.from_models("cpu"))
    (tmp_path / "meta.csv").write_text("path,subject_id,sex\n" + "".join(
        f"{p},S{i // 2},{'F' if i % 2 else 'M'}\n" for i, p in enumerate(photos)))
    g.import_metadata(tmp_path / "meta.csv")
    g.close()
    root = tmp_path / "cases"
    for i in range(20):  # 20 solved cases: enough for a calibration
        as_sketch(photos[i % 8], root / "sketches" / f"case{i:02d}.png")
    (root / "truth.csv").write_text("case,subject_id\n" + "".join(f"case{i:02d},S{(i % 8) // 2}\n" for i in range(20)))
    return root


def test_dialog_runs_shows_plots_adopts_calibration_and_saves(qtbot: Any, hub_and_session: tuple[Any, Any],
                                                              cases: Path, tmp_path: Path) -> None:
    from sketchface_desktop.views.validate_dialog import open_validation

    hub, session = hub_and_session
    dialog = open_validation(hub, session)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.gallery.count() == 1, timeout=10_000)
    dialog.cases_dir.setText(str(cases))
    dialog.encoder.setCurrentIndex(dialog.encoder.findData("baseline"))
    job = dialog.start()
    assert job is not None and job.lane == "engine" and job.cancellable and not dialog.run_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.outcome is not None, timeout=120_000)
    qtbot.waitUntil(lambda: dialog.run_button.isEnabled(), timeout=5_000)
    assert all(not v.pixmap().isNull() for v in dialog.plots.values())
    assert "top 1" in dialog.summary.toHtml() and "20 of 20 solved cases" in dialog.status.text()
    sha = dialog.outcome.doc["encoders"]["baseline"]["embedder"]["model_sha256"]
    assert calibration_note(0.3, 1, sha) is None  # nothing adopted yet: no claim
    with qtbot.waitSignal(dialog.calibration_adopted, timeout=10_000):
        dialog.adopt()
    note = calibration_note(0.3, 1, sha)
    assert note is not None and note.startswith("In validation on 20 solved cases")
    dialog.save_to(str(tmp_path / "report"))
    qtbot.waitUntil(lambda: (tmp_path / "report" / "validation.pdf").is_file(), timeout=30_000)
    qtbot.waitUntil(lambda: "Saved:" in dialog.status.text(), timeout=5_000)
    if SHOTS.is_dir() and os.access(SHOTS, os.W_OK):
        dialog.tabs.setCurrentIndex(1)
        qtbot.wait(50)
        dialog.grab().save(str(SHOTS / "validation_dialog.png"))


def test_dialog_reports_bad_input_in_place(qtbot: Any, hub_and_session: tuple[Any, Any], installed_models: Path,
                                           tmp_path: Path) -> None:
    from sketchface_desktop.views.validate_dialog import ValidationDialog

    hub, session = hub_and_session
    synthetic_gallery("Mugshots", orthonormal(3), ["a", "b", "c"])
    dialog = ValidationDialog(hub, session)
    qtbot.addWidget(dialog)
    assert dialog.start() is None and "Choose" in dialog.status.text()
    qtbot.waitUntil(lambda: dialog.gallery.count() == 1, timeout=10_000)
    dialog.cases_dir.setText(str(tmp_path / "nowhere"))
    dialog.start()
    qtbot.waitUntil(lambda: "No cases folder" in dialog.status.text(), timeout=30_000)
    assert dialog.outcome is None and not dialog.adopt_button.isEnabled()


def test_results_grid_tooltip_shows_the_calibration_only_when_one_is_in_use(qtbot: Any, installed_models: Path) -> None:
    from PySide6.QtCore import Qt

    from engine.sketch.embedder import file_sha256
    from engine.validate import save
    from sketchface_desktop.ops.search import ResultRow
    from sketchface_desktop.views.results_view import ResultsModel
    from sketchface_desktop.views.thumbnails import ThumbnailLoader
    from sketchface_desktop.workers import JobHub
    from tests.engine.test_validate_report import calibration

    hub = JobHub()
    model = ResultsModel(ThumbnailLoader(hub), session=None)  # tooltips need no session
    row = ResultRow(3, 3, 0.31, "g1", "Mugshots", 7, 7, "/p/7.jpg", "ab" * 32, "S7", False)
    model.set_rows([row])

    def tip() -> str:
        return str(model.data(model.index(0), Qt.ItemDataRole.ToolTipRole))

    sha = file_sha256("sketch_encoder", "model.safetensors")  # a search has hashed the encoder
    assert "In validation" not in tip()  # no calibration: no claim
    save(calibration(sha))
    assert "In validation on 25 solved cases (2026-11-20)" in tip() and "ranked 3rd or better" in tip()
    model.set_rows([ResultRow(3, None, None, "g1", "Mugshots", 7, 7, "/p/7.jpg", "ab" * 32, "S7", False)])
    assert "In validation" not in tip()  # blind review: scores withheld, so no calibration either
    hub.shutdown()
