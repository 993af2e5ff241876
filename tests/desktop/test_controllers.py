"""Controllers built from fakes (no MainWindow): an inline op runner, a fake sheet, grid, scope and prompter.

The case itself is the real engine case in the test's own SKETCHFACE_HOME, so "the case controller is
the one writer" is checked against what the engine stored, not against a mock's bookkeeping.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from sketchface_desktop.controllers.case_controller import GENERATED, OPENED, SKETCHES, CaseController
from sketchface_desktop.controllers.examiner_flow import ExaminerFlow
from sketchface_desktop.controllers.reconstruct_controller import ReconstructController
from sketchface_desktop.controllers.search_controller import SearchController
from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.ops import cases as case_ops
from sketchface_desktop.ops import galleries as gallery_ops
from sketchface_desktop.ops import models as model_ops
from sketchface_desktop.ops import search as search_ops
from sketchface_desktop.ops.search import ResultRow
from tests.desktop.fakes import (
    FakePrompter,
    FakeReconstructView,
    FakeResults,
    FakeScope,
    FakeSketch,
    InlineRunner,
)

CASE = {"case_number": "2026-0100", "title": "Controller test", "examiner": "Examiner One", "witnesses": ["W1"],
        "incident_date": "", "notes": ""}


def sheet_png(seed: int = 0) -> bytes:
    """A small drawn sheet (a few dark lines on white)."""
    img = np.full((240, 200), 255, np.uint8)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        x1, y1, x2, y2 = (int(v) for v in rng.integers(10, 190, 4))
        cv2.line(img, (x1, y1), (x2, y2), 0, 3)
    return bytes(cv2.imencode(".png", img)[1])


@pytest.fixture
def parts(qapp: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    runner = InlineRunner()
    session = EngineSession()
    cases = CaseController(runner)
    searches = SearchController(runner, session)
    changes: list[frozenset[str]] = []
    cases.changed.connect(changes.append)
    sketch, results, scope, ask = FakeSketch(), FakeResults(), FakeScope(), FakePrompter(dict(CASE))
    flow = ExaminerFlow(runner, session, cases, searches, sketch, results, scope, ask)
    yield {"runner": runner, "session": session, "cases": cases, "searches": searches, "flow": flow,
           "sketch": sketch, "results": results, "scope": scope, "ask": ask, "changes": changes}
    cases.shutdown()
    session.close()


def test_case_controller_broadcasts_each_write(parts: dict[str, Any]) -> None:
    from engine.cases import list_sketches

    cases, changes = parts["cases"], parts["changes"]
    opened: list[Any] = []
    cases.case_changed.connect(opened.append)
    cases.create(**CASE)
    assert cases.is_open and opened[-1].case_number == "2026-0100" and changes == [OPENED]
    cases.save_sketch(sheet_png(), witness="W1")
    cases.update(title="Renamed", witnesses=["W1"], incident_date="", notes="")
    assert changes[1:] == [frozenset({SKETCHES}), frozenset({"details"})]
    assert cases.info.title == "Renamed" and len(list_sketches(cases.case)) == 1
    cases.close()
    assert not cases.is_open and opened[-1] is None and changes[-1] == OPENED


def test_flow_creates_the_case_from_the_prompter_and_keeps_an_unsaved_drawing_on_close(parts: dict[str, Any]) -> None:
    from engine.cases import list_sketches, open_case

    flow, cases, sketch, results = parts["flow"], parts["cases"], parts["sketch"], parts["results"]
    flow.new_case()
    assert parts["ask"].asked == ["case_details"] and cases.is_open and results.can_decide is True
    case_id = cases.info.case_id
    sketch.load_png(sheet_png())
    sketch.modified = True  # drawn, never saved
    flow.close_case()
    assert not cases.is_open and results.can_decide is False and not sketch.is_modified()
    with open_case(case_id) as case:
        (version,) = list_sketches(case)
    assert version.witness == "W1" and version.note == "autosaved"


def test_flow_asks_which_witness_when_the_case_has_several(parts: dict[str, Any]) -> None:
    from engine.cases import list_sketches

    flow, cases, sketch, ask = parts["flow"], parts["cases"], parts["sketch"], parts["ask"]
    flow.new_case(dict(CASE, witnesses=["W1", "W2"]))
    sketch.load_png(sheet_png())
    assert flow.save_sketch() is None, "no witness chosen: nothing stored"
    assert ask.asked[-1] == "choose_witness" and list_sketches(cases.case) == []
    ask.witness = "W2"
    flow.save_sketch()
    assert [v.witness for v in list_sketches(cases.case)] == ["W2"]


def test_search_needs_a_drawing_and_the_face_models(parts: dict[str, Any]) -> None:
    flow, runner, results, ask = parts["flow"], parts["runner"], parts["results"], parts["ask"]
    parts["scope"].ids = ["gallery-1"]
    assert flow.search_sketch() is None
    assert "empty" in results.busy[-1] and runner.submitted == []
    parts["sketch"].load_png(sheet_png())
    assert model_ops.missing_required(), "no models are installed in this test's home"
    assert flow.search_sketch() is None
    assert "face models" in ask.guides[-1] and runner.submitted == [], "no search started without models"


def test_decision_without_a_recorded_search_is_refused_with_a_message(parts: dict[str, Any]) -> None:
    row = ResultRow(1, 1, 0.5, "g", "G", 7, 7, "/p.jpg", "0" * 64, None, False)
    assert parts["flow"].decide(row, "possible", "") is None
    assert parts["ask"].told and parts["runner"].submitted == []


def test_generated_image_is_stored_by_the_case_controller_with_its_sheet(parts: dict[str, Any]) -> None:
    from PIL import Image

    from engine.cases import list_generated, list_sketches
    from sketchface_desktop.ops.generation import GeneratedOutput

    cases, changes, ask = parts["cases"], parts["changes"], parts["ask"]
    view, sketch = FakeReconstructView(), FakeSketch(sheet_png(3))
    rec = ReconstructController(parts["runner"], parts["session"], cases, parts["flow"], view, sketch, ask)
    output = GeneratedOutput("reconstruction", Image.new("RGB", (32, 32), "grey"), None, 7, 0.4,
                             {"synthetic": True, "parameters": {"steps": 1}, "models": {}}, "seed 7", sketch.png)
    assert rec.save(output) is None and ask.told[-1][0] == "Save to case", "no case: a message, nothing written"
    cases.create(**CASE)
    rec.save(output)
    (gen,) = list_generated(cases.case)
    (version,) = list_sketches(cases.case)
    assert gen.parent == version.ref, "the sheet it came from was stored first and linked"
    assert frozenset({SKETCHES}) in changes and frozenset({GENERATED}) in changes
    assert "generated image" in view.statuses[-1]


def test_reconstruction_without_diffusion_models_opens_the_guide(parts: dict[str, Any]) -> None:
    view, ask, runner = FakeReconstructView(), parts["ask"], parts["runner"]
    rec = ReconstructController(runner, parts["session"], parts["cases"], parts["flow"], view, FakeSketch(), ask)
    assert rec.generate() is None and "empty" in view.statuses[-1]
    rec.sketch = FakeSketch(sheet_png())
    assert rec.generate() is None
    assert "generation models" in ask.guides[-1] and runner.submitted == []


def test_each_op_picks_its_lane(parts: dict[str, Any]) -> None:
    runner, session = InlineRunner(execute=False), parts["session"]
    slot = case_ops.CaseSlot()
    request = search_ops.sketch_request(sheet_png(), None, ["g"], 5, [])
    for op in (case_ops.record_decision(slot, 1, 1, "g", "possible"), case_ops.export_report(slot, "pdf", None),
               case_ops.sign_off(slot, "B", role="r", statement="", search_ids=None), case_ops.audit(slot)):
        op.run(runner)
    search_ops.search(session, request).run(runner)
    gallery_ops.add_folder(session, "g", "/x", "G").run(runner)
    gallery_ops.list_galleries(session).run(runner)
    model_ops.status().run(runner)
    assert [lane for _t, lane in runner.submitted] == ["case"] * 4 + ["engine", "engine", "io", "io"]


def test_sketch_request_sends_the_whole_sheet_and_the_guide_box(parts: dict[str, Any]) -> None:
    png, box = sheet_png(), (20.0, 30.0, 180.0, 210.0)
    request = search_ops.sketch_request(png, box, ["g"], 5, [])
    (query,) = request.queries
    assert query.data == png and query.face_box == box, "the engine crops; the desktop sends the sheet as drawn"


def test_compare_crops_a_recorded_search_with_its_recorded_box(parts: dict[str, Any]) -> None:
    from types import SimpleNamespace

    flow, cases = parts["flow"], parts["cases"]
    parts["sketch"].box = (0.0, 0.0, 50.0, 50.0)  # the sheet's guide now (moved since the search)
    assert flow.compare_box() == (0.0, 0.0, 50.0, 50.0), "nothing recorded on show: the current guide"
    cases.searches = [SimpleNamespace(id=3, manifest={"query": [{"kind": "sketch", "face_box": [10, 20, 110, 140]}]})]
    flow.shown_search_id, flow.shown_query_png = 3, sheet_png()
    assert flow.compare_box() == (10.0, 20.0, 110.0, 140.0)
    cases.searches = [SimpleNamespace(id=3, manifest={"query": [{"kind": "photo"}]})]
    assert flow.compare_box() is None, "a photo query has no sketch box"


def test_case_archive_moves_to_another_workstation_through_the_case_controller(
        parts: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    cases, changes = parts["cases"], parts["changes"]
    cases.create(**CASE)
    cases.save_sketch(sheet_png(), witness="W1")
    written: list[Any] = []
    cases.export_archive(str(tmp_path / "case.zip"), written.append)
    (result,) = written
    assert result.sha256 == hashlib.sha256((tmp_path / "case.zip").read_bytes()).hexdigest()
    cases.close()
    monkeypatch.setenv("SKETCHFACE_HOME", str(tmp_path / "second_workstation"))  # the receiver
    from engine import examiners

    examiners.add("R. Receiver", "R-0002")  # the receiving examiner's profile on that workstation
    changes.clear()
    cases.import_archive(str(tmp_path / "case.zip"), result.sha256)
    assert cases.is_open and cases.info.case_number == CASE["case_number"] and changes == [OPENED]
    assert len(cases.sketches) == 1 and str(tmp_path / "second_workstation") in str(cases.info.folder)
