"""The reasoned examination through the window's real wiring: probe intake (limited, with a reason) ->
search -> comparison sheets for two candidates (with a mark placed on the images) -> a conclusion for
one (the sketch scale's ceiling held) -> sign-off by a second examiner -> PDF, read back with pypdf;
a search made before intake is listed as such; the marks filter narrows the candidates to a tattoo."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton

from engine.cli import main
from tests.desktop.conftest import wait_idle
from tests.desktop.test_case_workflow import export_pdf, pdf_text
from tests.desktop.test_examiner_flow import CASE, build_gallery, draw_face
from tests.examiner_helpers import acting_as

pytestmark = pytest.mark.gui
SHOTS = Path(os.environ.get("SKETCHFACE_SHOTS", "/tmp/shots"))
REASON = "Drawn from a three-second glimpse; hairline not seen"


def _search(qtbot: Any, w: Any) -> int:
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.results_model.rowCount() >= 2 and w.flow.shown_search_id is not None, timeout=60_000)
    wait_idle(qtbot, w.hub)
    return int(w.flow.shown_search_id)


def _record_intake(qtbot: Any, w: Any) -> None:
    w.act_intake.trigger()
    dialog = w.intake.dialog
    assert dialog is not None and dialog.isVisible()
    dialog.source.setCurrentText("artist-sketch")
    dialog.delay.setText("2 days")
    dialog.artist.setText("J. Artist")
    dialog.suitability.setCurrentText("limited")
    dialog.marks.setText("tattoo:left forearm:rose")
    dialog.findChild(QPushButton, "IntakeOk").click()
    assert dialog.isVisible() and "needs the reasons" in dialog.error.text(), "limited without a reason is refused"
    dialog.reasons.setPlainText(REASON)
    dialog.findChild(QPushButton, "IntakeOk").click()
    assert not dialog.isVisible()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: len(w.exam.status.intakes) == 1)
    assert w.errors.shown == []


def _open_sheet(qtbot: Any, w: Any, row: int) -> Any:
    w.results.view.setCurrentIndex(w.results_model.index(row))
    w.results.act_compare.trigger()
    dialog = w.dialogs.compare
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: dialog.sheet is not None and dialog.sheet.view is not None)
    return dialog


def _assess(sheet: Any, component: str, assessment: str, why: str = "", note: str = "") -> None:
    sheet.cell(component, 1).setCurrentText(assessment)
    sheet.cell(component, 2).setCurrentText(why)
    if note:
        sheet.cell(component, 3).setText(note)


def test_intake_search_sheets_conclusion_sign_off_and_pdf(qtbot: Any, window: Any, installed_models: Path,
                                                          make_photos: Any, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    w = window
    shutil.rmtree(installed_models / "sketch_encoder", ignore_errors=True)  # the labelled ArcFace baseline
    w.flow.new_case(dict(CASE, case_number="2026-2201"))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    assert w.exam.sheet_has_intake() is False
    qtbot.waitUntil(lambda: "No intake is recorded for the sketch on the sheet" in w.results.exam_notice.text())
    assert w.results.exam_notice.isVisible(), "said before the first search, as soon as the drawing settles"

    _record_intake(qtbot, w)
    assert w.exam.sheet_has_intake() is True
    qtbot.waitUntil(lambda: not w.results.exam_notice.isVisible())
    qtbot.waitUntil(lambda: "intake: limited" in w.navigator.sketch_list.item(0).text())

    search_id = _search(qtbot, w)
    qtbot.waitUntil(lambda: search_id in w.exam.status.searches)
    assert w.exam.status.searches[search_id] == {"probe_type": "sketch", "non_evidential": False,
                                                 "before_intake": False}
    assert "searched before intake" not in w.navigator.search_list.item(0).text()

    # Sheets for two candidates; a mark placed on the images goes into the tattoos note.
    keys = []
    for row in (0, 1):
        dialog = _open_sheet(qtbot, w, row)
        sheet = dialog.sheet
        assert [k for k, _ in sheet.view.components][:3] == ["skin", "face-outline", "face-composition"]
        assert sheet.table.rowCount() == 19, "every FISWG component of the engine's list"
        levels = [sheet.level.itemData(i) for i in range(sheet.level.count())]
        assert levels == ["lead", "not-supported", "insufficient"], "a sketch probe: investigative outcomes only"
        _assess(sheet, "nose", "similar", note="broad base in both")
        _assess(sheet, "ears", "not-assessable", "not in the sketch")
        _assess(sheet, "eyes", "dissimilar" if row else "similar")
        sheet.mark_component.setCurrentText("tattoos")
        box = dialog.pane.image_boxes()[1]
        QTest.mouseClick(dialog.pane, Qt.MouseButton.LeftButton, pos=QPoint(int(box.left() + 0.4 * box.width()),
                                                                              int(box.top() + 0.6 * box.height())))
        assert "[mark at 40%,60%]" in sheet.cell("tattoos", 3).text()
        assert dialog.pane.marks == [(0.4, 0.6)], "drawn at the same place on both images"
        _assess(sheet, "tattoos", "not-assessable", "not visible")
        sheet.save_button.click()
        wait_idle(qtbot, w.hub)
        qtbot.waitUntil(lambda s=sheet: len(s.view.rows) == 4)
        assert sheet.view.rows["ears"]["reason"] == "not in the sketch"
        keys.append((sheet.view.gallery_id, sheet.view.face_id))
        if row == 0:
            # The ceiling is the engine's too: a photo-scale level is refused, nothing recorded.
            w.exam.conclude("strong-support-same")
            wait_idle(qtbot, w.hub)
            qtbot.waitUntil(lambda s=sheet: "not a conclusion a sketch probe allows" in s.state.text())
            assert sheet.view.conclusion is None
            sheet.level.setCurrentIndex(0)
            sheet.conclusion_note.setText("Nose and mouth agree; worth an interview")
            sheet.conclude_button.click()
            wait_idle(qtbot, w.hub)
            qtbot.waitUntil(lambda s=sheet: s.view.conclusion is not None)
            assert "A lead worth pursuing" in sheet.conclusion.text()
            SHOTS.mkdir(parents=True, exist_ok=True)
            dialog.grab().save(str(SHOTS / "exam22_compare_sheet.png"))
        dialog.close()
    assert w.errors.shown == []

    # A second examiner signs off the case.
    signoff = w.dialogs.sign_off()
    with acting_as():
        signoff.examiner.setText("B. Reviewer")
        signoff.statement.setPlainText("Reviewed the intake, both sheets and the conclusion.")
        signoff.scope.setText("the intake, the two comparison sheets and the conclusion")
        signoff.findChild(QPushButton, "SignOffButton").click()
        qtbot.waitUntil(lambda: bool(signoff.signoffs) or "Not signed" in signoff.error.text(), timeout=30_000)
        assert signoff.signoffs, signoff.error.text()
    assert w.errors.shown == []

    pdf = export_pdf(qtbot, w, tmp_path / "exam22.pdf")
    text = pdf_text(pdf)
    assert "suitability LIMITED: " + REASON in text, "the intake and its reason"
    assert "source artist-sketch" in text and "delay 2 days" in text and "artist J. Artist" in text
    assert "recorded before its first search" in text and "searched before intake" not in text
    assert "tattoo — left forearm: rose" in text
    for g, f in keys:
        assert f"({g}), face {f}" in text, "each sheet names its candidate's own gallery and face"
    assert "Nose: similar — broad base in both" in text and "Ears: not-assessable (not in the sketch)" in text
    assert "Eyes: dissimilar" in text and "Eyes: similar" in text, "each candidate's own sheet"
    assert "[mark at 40%,60%]" in text
    assert text.count("Conclusion: A lead worth pursuing [investigative-lead]") == 1
    assert "Conclusion: none recorded" in text, "the second candidate has a sheet but no conclusion"
    assert "A sketch search yields leads, not identifications." in text, "the limitations"
    assert "No validation exists for the" in text
    assert "B. Reviewer" in text and "Reviewed the intake, both sheets and the conclusion." in text
    _render_examination_page(pdf)

    # The command line shows what the window recorded: the intake and the marks the witness described.
    capsys.readouterr()
    assert main(["case", "show", "2026-2201"]) == 0
    shown = capsys.readouterr().out
    assert "intake 1 of sketch_version:1: artist-sketch, limited (" + REASON + ")" in shown
    assert "    tattoo: left forearm — rose" in shown and "searched before intake" not in shown
    assert main(["case", "verify", "2026-2201"]) == 0
    assert "searched before intake" not in capsys.readouterr().out


def _render_examination_page(pdf: Path) -> None:
    """The PDF page with the examination section, as PNG (poppler's pdftoppm), for a person to look at."""
    from pypdf import PdfReader

    if shutil.which("pdftoppm") is None:
        return
    pages = PdfReader(str(pdf)).pages
    page = next(i for i, p in enumerate(pages) if "Examination: probe intake" in (p.extract_text() or ""))
    SHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(page + 1), "-l", str(page + 1), "-singlefile",
                    str(pdf), str(SHOTS / "exam22_report_page")], check=True, timeout=60)


def test_search_before_intake_is_listed_and_marks_filter_narrows_to_the_tattoo(
        qtbot: Any, window: Any, installed_models: Path, make_photos: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    w = window
    shutil.rmtree(installed_models / "sketch_encoder", ignore_errors=True)
    w.flow.new_case(dict(CASE, case_number="2026-2202"))
    wait_idle(qtbot, w.hub)
    folder = make_photos(6)
    build_gallery(qtbot, w, folder)
    draw_face(w.sketch.canvas)
    search_id = _search(qtbot, w)
    n = w.results_model.rowCount()
    assert n >= 2
    qtbot.waitUntil(lambda: w.exam.status.searches.get(search_id, {}).get("before_intake") is True)
    assert "searched before intake" in w.navigator.search_list.item(0).text()
    assert "searched before intake" in w.results.exam_notice.text() and w.results.exam_notice.isVisible()

    # A tattoo annotated on one gallery face: the marks filter lists that face only.
    csv_path = tmp_path / "marks.csv"
    csv_path.write_text("path,tattoos\nperson_0003.jpg,left forearm: rose\n", encoding="utf-8")
    gallery_id = w.navigator.checked_galleries()[0]
    w.galleries.import_metadata(gallery_id, str(csv_path))
    wait_idle(qtbot, w.hub)
    assert w.errors.shown == []
    w.results.marks_kind.setCurrentText("tattoo")
    w.results.marks_text.setText("rose")
    assert w.results.options().filters == ("tattoo=rose",)
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.flow.shown_search_id not in (None, search_id), timeout=60_000)
    wait_idle(qtbot, w.hub)
    shown = {Path(w.results_model.row(i).photo_path).name for i in range(w.results_model.rowCount())}
    assert shown == {"person_0003.jpg"}, f"only the tattooed photo's faces, of {n}: {shown}"
    w.results.marks_text.setText("anchor")  # negative control: no face has that tattoo
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w.hub, timeout=120_000)
    wait_idle(qtbot, w.hub)
    assert w.results_model.rowCount() == 0

    text = pdf_text(export_pdf(qtbot, w, tmp_path / "before_intake.pdf"))
    assert f"Search {search_id}, query image 1 (sketch, SHA-256" in text
    assert "searched before intake (no intake recorded)" in text
    capsys.readouterr()
    assert main(["case", "verify", "2026-2202"]) == 0, "listed, not a finding: the record itself is intact"
    out = capsys.readouterr().out
    assert f"note: Search {search_id}, query image 1 (sketch" in out and "searched before intake" in out
    assert main(["case", "show", "2026-2202"]) == 0
    assert "searched before intake (no intake recorded)" in capsys.readouterr().out


def _run(qtbot: Any, w: Any, request: Any, before: int | None) -> int:
    w.flow.run_request(request)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.flow.shown_search_id not in (None, before) and w.results_model.rowCount() >= 1,
                    timeout=60_000)
    wait_idle(qtbot, w.hub)
    return int(w.flow.shown_search_id)


def test_a_synthetic_probe_is_non_evidential_and_held_to_lead_outcomes(
        qtbot: Any, window: Any, installed_models: Path, make_photos: Any) -> None:
    """The request the Reconstruct tab's "Search with this face" builds (a SYNTHETIC photo query), run before
    the generated image was stored in the case: marked non-evidential, and no photo-scale conclusion."""
    from dataclasses import replace

    from sketchface_desktop.ops.search import photo_request

    w = window
    w.flow.new_case(dict(CASE, case_number="2026-2203"))
    wait_idle(qtbot, w.hub)
    folder = make_photos(6)
    build_gallery(qtbot, w, folder)
    w.act_intake.trigger()  # nothing on the sheet: nothing to take in, and the window says so
    w.intake.dialog.findChild(QPushButton, "IntakeOk").click()
    qtbot.waitUntil(lambda: "Not recorded: Open a case and draw or load the sketch" in w.results.exam_notice.text())
    assert w.exam.status.intakes == {}
    request = photo_request(str(folder / "person_0001.jpg"), w.navigator.checked_galleries(), 10, [])
    photo_sid = _run(qtbot, w, request, None)
    dialog = _open_sheet(qtbot, w, 0)
    levels = [dialog.sheet.level.itemData(i) for i in range(dialog.sheet.level.count())]
    assert "strong-support-same" in levels, "negative control: a photo probe is on the scale of support"
    assert not dialog.sheet.banner.isVisible()
    dialog.close()

    synthetic = replace(request, queries=(replace(request.queries[0], name="SYNTHETIC reconstruction 1"),),
                        label="SYNTHETIC probe: reconstruction 1")
    sid = _run(qtbot, w, synthetic, photo_sid)
    qtbot.waitUntil(lambda: w.exam.status.searches.get(sid, {}).get("non_evidential") is True)
    assert w.exam.status.searches[photo_sid]["non_evidential"] is False
    assert "NON-EVIDENTIAL (generated probe)" in w.navigator.search_list.item(0).text()
    assert "NON-EVIDENTIAL (generated probe)" not in w.navigator.search_list.item(1).text()
    assert "NON-EVIDENTIAL" in w.results.exam_notice.text()
    dialog = _open_sheet(qtbot, w, 0)
    sheet = dialog.sheet
    assert [sheet.level.itemData(i) for i in range(sheet.level.count())] == ["lead", "not-supported", "insufficient"]
    assert "NON-EVIDENTIAL" in sheet.banner.text()
    w.exam.conclude("strong-support-same")
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: "not a conclusion a generated probe allows" in sheet.state.text())
    assert sheet.view.conclusion is None
