"""WorkstationStatusBar: the acting examiner, compute device, model status, running jobs and the open case.

The examiner switcher shows who every write is signed as and changes it (a key file's passphrase is
asked here, once per switch). A demo workstation says DEMO in the bar, and its random-weight models
never show as a green "ready".

The device line comes from ``engine.runtime.describe``, which may import torch to ask CUDA: it is
computed in the engine lane after the window has painted, never at start-up.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QInputDialog, QLabel, QLineEdit, QStatusBar, QWidget

from sketchface_desktop.controllers.examiner_profiles import ExaminerProfiles
from sketchface_desktop.controllers.models_controller import ModelsController
from sketchface_desktop.views.ui import plain


def _named_label(text: str, name: str) -> QLabel:
    lab = plain(QLabel(text))
    lab.setObjectName(name)
    return lab


class WorkstationStatusBar(QStatusBar):
    """The window's status bar.

    Signals:
        models_clicked(): the model status was clicked (the window opens the Models page).
        add_examiner_requested(): "Add examiner…" was chosen in the switcher (the window asks who).
    """

    models_clicked = Signal()
    add_examiner_requested = Signal()
    ADD_ITEM = "Add examiner…"

    def __init__(self, models: ModelsController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StatusBar")
        self.models = models
        self.case_label = _named_label("No case open", "CaseStatus")
        self.jobs_label = _named_label("", "JobsStatus")
        self.models_label = _named_label("Models: checking…", "ModelsStatus")
        self.device_label = _named_label("Device: detecting…", "DeviceStatus")
        self.device_label.setToolTip("Compute device used for the face and sketch models")
        self.models_label.setCursor(Qt.CursorShape.PointingHandCursor)
        self.models_label.installEventFilter(self)
        self.model_state: dict[str, Any] = {}
        self.device_text = ""
        self.demo_notice = ""
        self.demo_label = _named_label("", "DemoStatus")
        self.demo_label.setProperty("role", "badge-missing")
        self.demo_label.hide()
        self.examiner_box = QComboBox()
        self.examiner_box.setObjectName("ExaminerSwitcher")
        self.examiner_box.setToolTip("The acting examiner: every decision, sign-off and report is signed with "
                                     "this profile's key")
        self.examiner_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.examiner_box.activated.connect(self._examiner_chosen)
        self.examiner_error = ""
        self.addWidget(self.case_label, 1)
        for widget in (self.demo_label, self.examiner_box, self.jobs_label, self.models_label, self.device_label):
            self.addPermanentWidget(widget)
        self.profiles: ExaminerProfiles | None = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """A click on the model status opens the Models page."""
        if watched is self.models_label and event.type() == QEvent.Type.MouseButtonRelease:
            self.models_clicked.emit()
            return True
        return super().eventFilter(watched, event)

    # -- acting examiner ------------------------------------------------------------------------
    def set_profiles(self, profiles: ExaminerProfiles) -> None:
        """Follow ``profiles`` (the window's one source of who is acting) and show its state now."""
        self.profiles = profiles
        profiles.acting_changed.connect(lambda _p: self._fill_examiners())
        profiles.profiles_changed.connect(lambda _p: self._fill_examiners())
        self._fill_examiners()

    def _fill_examiners(self) -> None:
        p = self.profiles
        if p is None:
            return
        box = self.examiner_box
        box.blockSignals(True)
        box.clear()
        if p.acting is None:
            box.addItem("Examiner: nobody chosen", "")
        for prof in p.profiles:
            box.addItem(f"Examiner: {prof.name} ({prof.identifier})", prof.fingerprint)
            box.setItemData(box.count() - 1, f"{prof.name} ({prof.identifier}), key {prof.fingerprint}",
                            Qt.ItemDataRole.ToolTipRole)
        box.addItem(self.ADD_ITEM, None)
        acting = p.acting.fingerprint if p.acting is not None else ""
        box.setCurrentIndex(max(0, box.findData(acting)))
        box.blockSignals(False)

    def acting_text(self) -> str:
        """What the switcher shows now (tests and screenshots read it)."""
        return self.examiner_box.currentText()

    def _examiner_chosen(self, index: int) -> None:
        fp = self.examiner_box.itemData(index)
        if fp is None:
            self._fill_examiners()
            self.add_examiner_requested.emit()
            return
        if fp:
            self.switch_examiner(str(fp))

    def switch_examiner(self, fingerprint: str, passphrase: str | None = None) -> bool:
        """Act as ``fingerprint``; a locked key file's passphrase is asked unless given. False: not switched."""
        p = self.profiles
        if p is None:
            return False
        if passphrase is None and not p.key_ready(fingerprint):
            prof = p.find(fingerprint)
            text, ok = QInputDialog.getText(self, "Examiner key", f"Passphrase for {prof.name}'s examiner key:",
                                            QLineEdit.EchoMode.Password)
            if not ok:
                self._fill_examiners()
                return False
            passphrase = text
        self.examiner_error = p.switch(fingerprint, passphrase)
        if self.examiner_error:
            self._fill_examiners()
            self.showMessage(f"Examiner not changed: {self.examiner_error}", 15000)
            return False
        self.showMessage(f"Now working as {p.acting.name} ({p.acting.identifier}).", 8000)
        return True

    # -- demo --------------------------------------------------------------------------------
    def set_demo(self, notice: str) -> None:
        """Label the bar DEMO (``notice`` non-empty: this workstation runs on the demo's stand-in models)."""
        self.demo_notice = notice
        self.demo_label.setText("DEMO" if notice else "")
        self.demo_label.setToolTip(notice)
        self.demo_label.setVisible(bool(notice))
        if self.model_state:
            self._models_read(self.model_state)

    def set_case(self, text: str) -> None:
        self.case_label.setText(text)

    def set_jobs(self, active: int) -> None:
        self.jobs_label.setText(f"{active} job{'s' if active != 1 else ''} running" if active else "")

    def refresh_models(self) -> None:
        self.models.summary(self._models_read)

    def _models_read(self, state: dict[str, Any]) -> None:
        self.model_state = state
        if self.demo_notice and state["required_ok"]:  # stand-ins are never "ready"
            text, tip = "DEMO models (random weights)", self.demo_notice
        elif not state["required_ok"]:
            text, tip = "Models: missing — click to install", "Missing: " + ", ".join(state["missing"])
        elif state["sketch_encoder"]:
            text, tip = "Models: ready", "Face detector, recognizer and sketch encoder installed"
        else:
            text, tip = "Models: ready (baseline sketch search)", (
                "No trained sketch encoder: sketch searches use ArcFace itself and are labelled 'baseline'")
        self.models_label.setText(text)
        self.models_label.setToolTip(tip)
        ok = state["required_ok"] and not self.demo_notice
        self.models_label.setProperty("role", "badge-ok" if ok else "badge-missing")
        self.models_label.style().polish(self.models_label)

    def refresh_device(self, preference: str) -> None:
        """Ask the engine lane which device the models will use (may import torch: never on the GUI thread)."""
        self.models.device(preference, self._device_read, lambda exc: self._device_read(f"unknown ({exc})"))

    def _device_read(self, text: str) -> None:
        self.device_text = text
        self.device_label.setText(f"Device: {text}")
