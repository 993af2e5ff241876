"""ExamController: probe intake, the comparison sheet and the conclusion of a candidate, from the window.

It starts the examination ops (:mod:`sketchface_desktop.ops.exam`) in the case lane and broadcasts each
write through the case controller's change signal, as every case write does, so the audit panel and
the lists follow. What may be recorded (components, the scale's ceiling, reasons) is the engine's to
check: the window offers only what the engine allows and shows the engine's words when it refuses.
"""

from __future__ import annotations

import hashlib
from typing import Any

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.controllers.ports import SketchSource
from sketchface_desktop.ops import exam as exam_ops
from sketchface_desktop.ops.base import Runner
from sketchface_desktop.ops.exam import ProbeStatus, SheetView
from sketchface_desktop.workers import Job

EXAMINATION = "examination"


class ExamController(QObject):
    """The examination verbs of the window.

    Signals:
        sheet_shown(object): a SheetView after reading or recording a sheet or conclusion.
        status_changed(object): the case's ProbeStatus (intakes, non-evidential searches, searched before
            intake), after each change of the case; an empty one when no case is open.
        intake_recorded(object): the ProbeStatus right after an intake was recorded.
        intake_failed(str): the engine's words when it refused an intake (nothing was recorded).
        failed(str): the engine's words when it refused a sheet or a conclusion (nothing was recorded).
    """

    sheet_shown = Signal(object)
    status_changed = Signal(object)
    intake_recorded = Signal(object)
    intake_failed = Signal(str)
    failed = Signal(str)

    def __init__(self, runner: Runner, cases: Any, sketch: SketchSource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.cases = cases
        self.sketch = sketch
        self.status = ProbeStatus()
        self.shown: SheetView | None = None
        cases.changed.connect(lambda _what: self.refresh())

    def _error(self, exc: BaseException) -> None:
        self.failed.emit(str(getattr(exc, "message", "") or exc))

    def _wrote(self, view: SheetView) -> None:
        self.cases.changed.emit(frozenset({EXAMINATION}))
        self._show(view)

    def _show(self, view: SheetView) -> None:
        self.shown = view
        self.sheet_shown.emit(view)

    # -- probe status and intake ---------------------------------------------------------------
    def refresh(self) -> Job | None:
        """Read which probes have an intake (no case open: an empty status)."""
        if not self.cases.is_open:
            self._status(ProbeStatus())
            return None
        return exam_ops.status(self.cases.slot).success(self._status).failure(lambda _e: None).run(self.runner)

    def _status(self, status: ProbeStatus) -> None:
        self.status = status
        self.status_changed.emit(status)

    def sheet_has_intake(self) -> bool | None:
        """Whether the drawing on the sheet has an intake (None: no case open, or the sheet is blank)."""
        if not self.cases.is_open or self.sketch.is_blank():
            return None
        return hashlib.sha256(self.sketch.to_png_bytes()).hexdigest() in self.status.intakes

    def record_intake(self, values: dict[str, Any]) -> Job | None:
        """Record the intake of the drawing on the sheet (stored first as a sketch version when it is not).

        Args:
            values: source, suitability, reasons, software, witness, delay, artist, alterations, and
                marks ("KIND:LOCATION[:DESCRIPTION]" strings), as the intake dialog gives them.
        """
        if not self.cases.is_open or self.sketch.is_blank():
            self.intake_failed.emit("Open a case and draw or load the sketch first: an intake is of a stored "
                                    "sketch.")
            return None
        png = self.sketch.to_png_bytes()
        sha = hashlib.sha256(png).hexdigest()
        stored = next((v for v in self.cases.sketches if v.sha256 == sha), None)
        if stored is not None:
            return self._intake(stored.id, values)
        witness = str(values.get("witness") or "") or self.cases.default_witness()
        job = self.cases.save_sketch(png, witness=witness, note="stored for its intake")

        def saved(result: Any) -> None:
            self.sketch.mark_saved()
            self._intake(result[0].id, values)

        job.result.connect(saved)
        return job

    def _intake(self, version_id: int, values: dict[str, Any]) -> Job:
        def done(status: ProbeStatus) -> None:
            self.cases.changed.emit(frozenset({EXAMINATION}))
            self._status(status)
            self.intake_recorded.emit(status)

        return exam_ops.record_intake(self.cases.slot, version_id, values).success(done).failure(
            lambda exc: self.intake_failed.emit(str(getattr(exc, "message", "") or exc))).run(self.runner)

    # -- the comparison sheet and the conclusion -----------------------------------------------
    def open_sheet(self, search_id: int | None, gallery_id: str, face_id: int) -> Job | None:
        """Read a candidate's sheet (nothing to read for a search not recorded in a case)."""
        if not self.cases.is_open or search_id is None:
            return None
        return exam_ops.sheet(self.cases.slot, search_id, gallery_id, face_id).success(self._show).failure(
            self._error).run(self.runner)

    def save_sheet(self, features: list[tuple[str, str, str]], notes: dict[str, str]) -> Job | None:
        """Record the assessed components of the shown sheet (component, assessment, why) with their notes."""
        v = self.shown
        if v is None:
            return None
        if not features:
            self.failed.emit("Assess at least one component before saving the sheet.")
            return None
        return exam_ops.record_sheet(self.cases.slot, v.search_id, v.gallery_id, v.face_id, features, notes).success(
            self._wrote).failure(self._error).run(self.runner)

    def conclude(self, level: str, note: str = "") -> Job | None:
        """Record a conclusion on the shown candidate (the engine refuses one above the probe's ceiling)."""
        v = self.shown
        if v is None:
            return None
        return exam_ops.record_conclusion(self.cases.slot, v.search_id, v.gallery_id, v.face_id, level,
                                          note).success(self._wrote).failure(self._error).run(self.runner)
