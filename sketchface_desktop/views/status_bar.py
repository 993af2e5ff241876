"""WorkstationStatusBar: compute device, model status, running jobs and the open case, always in view.

The device line comes from ``engine.runtime.describe``, which may import torch to ask CUDA: it is
computed in the engine lane after the window has painted, never at start-up.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

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
    """

    models_clicked = Signal()

    def __init__(self, models: ModelsController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StatusBar")
        self.models = models
        self.case_label = _named_label("No case open", "CaseStatus")
        self.jobs_label = _named_label("", "JobsStatus")
        self.models_label = _named_label("Models: checking…", "ModelsStatus")
        self.device_label = _named_label("Device: detecting…", "DeviceStatus")
        self.device_label.setToolTip("Compute device used for the face and sketch models")
        self.addWidget(self.case_label, 1)
        for lab in (self.jobs_label, self.models_label, self.device_label):
            self.addPermanentWidget(lab)
        self.models_label.setCursor(Qt.CursorShape.PointingHandCursor)
        self.models_label.installEventFilter(self)
        self.model_state: dict[str, Any] = {}
        self.device_text = ""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """A click on the model status opens the Models page."""
        if watched is self.models_label and event.type() == QEvent.Type.MouseButtonRelease:
            self.models_clicked.emit()
            return True
        return super().eventFilter(watched, event)

    def set_case(self, text: str) -> None:
        self.case_label.setText(text)

    def set_jobs(self, active: int) -> None:
        self.jobs_label.setText(f"{active} job{'s' if active != 1 else ''} running" if active else "")

    def refresh_models(self) -> None:
        self.models.summary(self._models_read)

    def _models_read(self, state: dict[str, Any]) -> None:
        self.model_state = state
        if not state["required_ok"]:
            text, tip = "Models: missing — click to install", "Missing: " + ", ".join(state["missing"])
        elif state["sketch_encoder"]:
            text, tip = "Models: ready", "Face detector, recognizer and sketch encoder installed"
        else:
            text, tip = "Models: ready (baseline sketch search)", (
                "No trained sketch encoder: sketch searches use ArcFace itself and are labelled 'baseline'")
        self.models_label.setText(text)
        self.models_label.setToolTip(tip)
        self.models_label.setProperty("role", "badge-ok" if state["required_ok"] else "badge-missing")
        self.models_label.style().polish(self.models_label)

    def refresh_device(self, preference: str) -> None:
        """Ask the engine lane which device the models will use (may import torch: never on the GUI thread)."""
        self.models.device(preference, self._device_read, lambda exc: self._device_read(f"unknown ({exc})"))

    def _device_read(self, text: str) -> None:
        self.device_text = text
        self.device_label.setText(f"Device: {text}")
