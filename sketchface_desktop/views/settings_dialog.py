"""SettingsDialog: compute device, generation memory plan, search and import defaults, locations, Models.

Settings are the engine's typed ``Settings`` (TOML in the config dir), loaded and saved through
:mod:`sketchface_desktop.ops.settings` (the engine's own load and save), so the CLI and the app always
agree; a bad value is refused with the engine's message.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.examiner_profiles import ExaminerProfiles
from sketchface_desktop.controllers.models_controller import ModelsController
from sketchface_desktop.ops import Runner
from sketchface_desktop.ops import settings as settings_ops
from sketchface_desktop.views.examiners_page import ExaminersPage
from sketchface_desktop.views.models_page import ModelsPage
from sketchface_desktop.views.ui import button, label

DEVICE_LABELS = {"auto": "Automatic (GPU when usable, else CPU)", "cuda": "GPU (CUDA)", "cpu": "CPU only"}
PLAN_LABELS = {"auto": "Automatic (from free GPU memory)", "resident": "Everything on the GPU (16 GB and more)",
               "model_offload": "Model CPU offload (8-16 GB)", "sequential_offload": "Sequential CPU offload (under 8 GB)"}
TILING_LABELS = {"auto": "Automatic (above 768 px)", "on": "Always", "off": "Never"}


def _folder_row(parent: QWidget, path: str, env: str) -> QWidget:
    """A read-only location with an Open button and the environment variable that moves it."""
    row = QWidget(parent)
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    edit = QLineEdit(path)
    edit.setReadOnly(True)
    edit.setToolTip(f"Move it with the environment variable {env} (or SKETCHFACE_HOME for everything).")
    open_button = button("Open", "open")
    open_button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(path)))
    lay.addWidget(edit, 1)
    lay.addWidget(open_button)
    return row


class SettingsDialog(QDialog):
    """The settings window: General, Generation, Locations, Models and Examiners tabs.

    Signals:
        settings_saved(object): the new :class:`engine.settings.Settings` after OK.
    """

    settings_saved = Signal(object)

    def __init__(self, hub: Runner, parent: QWidget | None = None, start_tab: str = "general",
                 models: ModelsController | None = None) -> None:
        """``models``: the window's models controller (default: one of this dialog's own on ``hub``)."""
        super().__init__(parent)
        self.setObjectName("SettingsDialog")
        self.setWindowTitle("Settings")
        self.error_label = label("", "badge-missing", True)
        self.current, problem = settings_ops.read_settings()
        if problem:
            self.error_label.setText(f"{problem} Defaults are shown; saving replaces the file.")
        self.tabs = QTabWidget()
        self.tabs.addTab(self._general_tab(), "General")
        self.tabs.addTab(self._generation_tab(), "Generation")
        self.tabs.addTab(self._locations_tab(), "Data locations")
        self.models = models if models is not None else ModelsController(hub, self)
        self.models_page = ModelsPage(self.models, self)
        self.tabs.addTab(self.models_page, "Models")
        self.examiners_page = ExaminersPage(ExaminerProfiles(self), self)
        self.tabs.addTab(self.examiners_page, "Examiners")
        self.tabs.setCurrentIndex({"general": 0, "generation": 1, "locations": 2, "models": 3,
                                   "examiners": 4}.get(start_tab, 0))
        self.gpu: dict[str, Any] | None = None
        self.models.gpu_facts(self._gpu_read, lambda exc: self._gpu_read({"vram": None, "onnx": f"unknown ({exc})"}))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.resize(860, 560)

    def _general_tab(self) -> QWidget:
        s = self.current
        page = QWidget()
        self.device = QComboBox()
        self.device.setObjectName("DeviceCombo")
        for key in settings_ops.DEVICES:
            self.device.addItem(DEVICE_LABELS.get(key, key), key)
        self.device.setCurrentIndex(max(0, self.device.findData(s.device)))
        self.examiner = QLineEdit(s.examiner)
        self.examiner.setPlaceholderText("A label only: who signs is the acting profile (Examiners tab)")
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 1000)
        self.top_k.setValue(s.search_top_k)
        self.workers = QSpinBox()
        self.workers.setRange(1, max(1, os.cpu_count() or 1))
        self.workers.setValue(min(s.ingest_workers, self.workers.maximum()))
        self.batch = QSpinBox()
        self.batch.setRange(1, 512)
        self.batch.setValue(s.ingest_batch)
        self.cloud = QCheckBox("Allow the cloud generation backend (sends images off this machine)")
        self.cloud.setChecked(s.cloud_backend_enabled)
        compute = QGroupBox("Compute")
        f1 = QFormLayout(compute)
        f1.addRow("Device", self.device)
        f1.addRow("", label("Takes effect for models loaded after saving.", "subtle"))
        work = QGroupBox("Examiner and defaults")
        f2 = QFormLayout(work)
        f2.addRow("Examiner name", self.examiner)
        f2.addRow("Candidates per search", self.top_k)
        f2.addRow("Import threads", self.workers)
        f2.addRow("Faces per batch", self.batch)
        f2.addRow("", self.cloud)
        lay = QVBoxLayout(page)
        lay.addWidget(compute)
        lay.addWidget(work)
        lay.addStretch(1)
        return page

    def _generation_tab(self) -> QWidget:
        """The GPU memory plan the engine would choose, and the user's overrides of it."""
        s = self.current
        page = QWidget()
        self.plan_label = label("Reading GPU memory…", "subtle", True)
        self.plan_label.setObjectName("MemoryPlanLabel")
        self.onnx_label = label("", "subtle", True)
        self.memory_plan = QComboBox()
        self.memory_plan.setObjectName("MemoryPlanCombo")
        for key, text in PLAN_LABELS.items():
            self.memory_plan.addItem(text, key)
        self.memory_plan.setCurrentIndex(max(0, self.memory_plan.findData(s.gen_memory_plan)))
        self.vae_tiling = QComboBox()
        for key, text in TILING_LABELS.items():
            self.vae_tiling.addItem(text, key)
        self.vae_tiling.setCurrentIndex(max(0, self.vae_tiling.findData(s.gen_vae_tiling)))
        self.vram_budget = QDoubleSpinBox()
        self.vram_budget.setRange(0.0, 512.0)
        self.vram_budget.setDecimals(1)
        self.vram_budget.setSuffix(" GB")
        self.vram_budget.setSpecialValueText("No limit")
        self.vram_budget.setValue(float(s.gen_vram_budget_gb))
        self.half = QCheckBox("Half precision (fp16) on the GPU")
        self.half.setChecked(s.gen_half_precision)
        self.compile_unet = QCheckBox("Compile the UNet (faster after a slow first image)")
        self.compile_unet.setChecked(s.gen_compile_unet)
        self.safety = QCheckBox("Safety checker (as the reference pipeline: flagged images are blacked out; "
                                "the choice is recorded in every image's provenance)")
        self.safety.setObjectName("SafetyCheckerBox")
        self.safety.setChecked(s.gen_safety_checker)
        self.batch_candidates = QSpinBox()
        self.batch_candidates.setRange(1, 16)
        self.batch_candidates.setValue(s.gen_batch_candidates)
        for widget in (self.memory_plan, self.vae_tiling):
            widget.currentIndexChanged.connect(self._show_plan)
        self.vram_budget.valueChanged.connect(self._show_plan)
        box = QGroupBox("GPU memory")
        form = QFormLayout(box)
        form.addRow("Plan now", self.plan_label)
        form.addRow("Memory plan", self.memory_plan)
        form.addRow("VAE tiling", self.vae_tiling)
        form.addRow("Use at most", self.vram_budget)
        form.addRow("Candidates per GPU call", self.batch_candidates)
        form.addRow("", self.half)
        form.addRow("", self.compile_unet)
        form.addRow("Face models", self.onnx_label)
        out = QGroupBox("Outputs")
        QVBoxLayout(out).addWidget(self.safety)
        lay = QVBoxLayout(page)
        lay.addWidget(box)
        lay.addWidget(out)
        lay.addWidget(label("If the GPU runs out of memory, choose a plan further down the list or turn VAE "
                            "tiling on. Takes effect for the next generation.", "subtle", True))
        lay.addStretch(1)
        return page

    def _gpu_read(self, facts: dict[str, Any]) -> None:
        self.gpu = facts
        self.onnx_label.setText(str(facts.get("onnx", "")))
        self._show_plan()

    def _show_plan(self) -> None:
        """Show the plan the engine would choose with the dialog's values (no torch in the GUI thread)."""
        if self.gpu is None:
            return
        vram = self.gpu.get("vram")
        device = "cuda" if vram is not None and self.device.currentData() != "cpu" else "cpu"
        budget = self.vram_budget.value()
        self.plan_label.setText(settings_ops.memory_plan_text(
            device, str(self.memory_plan.currentData()), str(self.vae_tiling.currentData()),
            budget if budget > 0 else None, vram))

    def _locations_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout()
        self.cases_dir = QLineEdit(self.current.cases_dir)
        self.cases_dir.setPlaceholderText(str(settings_ops.cases_dir_default()))
        choose = button("Choose…", "open")
        choose.clicked.connect(self._choose_cases_dir)
        row = QHBoxLayout()
        row.addWidget(self.cases_dir, 1)
        row.addWidget(choose)
        form.addRow("Cases", row)
        form.addRow("", label("New cases are created here, e.g. on an encrypted or network volume.", "subtle"))
        for title, path, env in settings_ops.locations():
            form.addRow(title, _folder_row(page, str(path), env))
        lay = QVBoxLayout(page)
        box = QGroupBox("Where SketchFace keeps its data")
        box.setLayout(form)
        lay.addWidget(box)
        lay.addStretch(1)
        return page

    def _choose_cases_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for new cases", self.cases_dir.text() or "")
        if path:
            self.cases_dir.setText(path)

    def edited(self) -> settings_ops.Settings:
        """The settings as edited in the dialog (not yet validated or saved)."""
        return dataclasses.replace(
            self.current, device=str(self.device.currentData()), examiner=self.examiner.text().strip(),
            search_top_k=self.top_k.value(), ingest_workers=self.workers.value(), ingest_batch=self.batch.value(),
            cloud_backend_enabled=self.cloud.isChecked(), cases_dir=self.cases_dir.text().strip(),
            gen_memory_plan=str(self.memory_plan.currentData()), gen_vae_tiling=str(self.vae_tiling.currentData()),
            gen_vram_budget_gb=float(self.vram_budget.value()), gen_half_precision=self.half.isChecked(),
            gen_compile_unet=self.compile_unet.isChecked(), gen_safety_checker=self.safety.isChecked(),
            gen_batch_candidates=self.batch_candidates.value())

    def accept(self) -> None:
        new = self.edited()
        problem = settings_ops.save_settings(new)
        if problem:
            self.error_label.setText(problem)
            return
        self.current = new
        self.settings_saved.emit(new)
        super().accept()
