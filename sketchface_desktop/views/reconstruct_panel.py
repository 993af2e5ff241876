"""ReconstructPanel: the Reconstruct tab — photorealistic candidates and disguise variations from the sketch.

The panel only shows choices and results and says what the examiner asked for through its signals;
:class:`~sketchface_desktop.reconstruct_controller.ReconstructController` runs the work in the engine
lane. Every output is synthetic and is shown that way: the SYNTHETIC band is painted into each
thumbnail, the panel's banner says it, and saved or probed images carry it in their metadata.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.ops.generation import (
    BACKEND_LOCAL,
    BACKEND_REPLICATE,
    SOURCE_CANDIDATE,
    SOURCE_SKETCH,
    GeneratedOutput,
    GenerateSettings,
)
from sketchface_desktop.views.reconstruct_strip import OutputStrip
from sketchface_desktop.views.ui import button, label, primary_button

BANNER = "Generated faces are SYNTHETIC: an investigative aid, never evidence of identity."
CLOUD_WARNING = ("Replicate is a cloud service: the selected face will be uploaded and leaves this computer. "
                 "You will be asked to confirm before each upload.")


def _double(value: float, low: float, high: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setSingleStep(0.1)
    box.setDecimals(2)
    box.setValue(value)
    box.setToolTip(tip)
    return box


class ReconstructPanel(QWidget):
    """The Reconstruct tab.

    Signals:
        describe_requested(): read the sketch's attributes to pre-fill the prompt.
        generate_requested(): generate candidates with the current settings.
        cancel_requested(): stop the running generation or variation.
        save_requested(object): store this GeneratedOutput in the open case.
        probe_requested(object): search with the sketch fused with this GeneratedOutput.
        vary_requested(object, str): disguise variations of this GeneratedOutput on a backend ("local"/"replicate").
    """

    describe_requested = Signal()
    generate_requested = Signal()
    cancel_requested = Signal()
    save_requested = Signal(object)
    probe_requested = Signal(object)
    vary_requested = Signal(object, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ReconstructPanel")
        self.source = QComboBox()
        self.source.setObjectName("ReconstructSource")
        self.source.addItem("Current sketch", SOURCE_SKETCH)
        self.source.addItem("Sketch + selected candidate's photo (FaceID Plus)", SOURCE_CANDIDATE)
        self.source.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source.setMinimumContentsLength(18)
        self.source.currentIndexChanged.connect(self._source_changed)
        self.prompt = QPlainTextEdit()
        self.prompt.setObjectName("ReconstructPrompt")
        self.prompt.setPlaceholderText("Describe the person, or press “Describe sketch” to pre-fill this "
                                       "from the drawing (read on this computer).")
        self.prompt.setFixedHeight(58)
        self.describe_button = button("Describe sketch", "info")
        self.describe_button.setToolTip("Read sex, age, hair, facial hair and glasses from the sketch locally; "
                                        "only confident answers go into the prompt")
        self.describe_button.clicked.connect(self.describe_requested)
        self.attributes = label("Attributes: not read yet.", "subtle", True)
        self.attributes.setObjectName("ReconstructAttributes")
        self.candidates = QSpinBox()
        self.candidates.setRange(1, 12)
        self.candidates.setValue(4)
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setValue(-1)
        self.seed.setSpecialValueText("random")
        self.seed.setMinimumWidth(110)
        self.seed.setToolTip("First seed (candidate i uses seed + i); random draws one and records it")
        self.steps = QSpinBox()
        self.steps.setRange(1, 150)
        self.steps.setValue(30)
        self.image_size = QSpinBox()
        self.image_size.setRange(32, 1024)
        self.image_size.setSingleStep(64)
        self.image_size.setValue(512)
        self.image_size.setSuffix(" px")
        self.likeness = _double(1.1, 0.0, 3.0, "How strongly the sketch's embedding drives the face (IP-Adapter)")
        self.face_strength = _double(1.6, 0.0, 3.0, "How much the candidate photo's structure counts (FaceID Plus)")
        self.structure = QCheckBox("Follow lines")
        self.structure.setToolTip("Keep the sketch's geometry: a ControlNet (lineart) follows its strokes")
        self.structure.setObjectName("ReconstructStructure")
        self.generate_button = primary_button("Generate", "pen")
        self.generate_button.setObjectName("ReconstructGenerate")
        self.generate_button.clicked.connect(self.generate_requested)
        self.cancel_button = button("Cancel")
        self.cancel_button.setObjectName("ReconstructCancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.cancel_button.setEnabled(False)
        self.status = label("", "subtle", True)
        self.status.setObjectName("ReconstructStatus")
        self.strip = OutputStrip(self)
        self.strip.current_output_changed.connect(lambda _o: self._update_actions())
        self.save_button = button("Save to case", "case")
        self.save_button.setObjectName("ReconstructSave")
        self.probe_button = button("Search as probe", "search")
        self.probe_button.setObjectName("ReconstructProbe")
        self.probe_button.setToolTip("Search with the sketch fused with this SYNTHETIC face (labelled as such)")
        self.vary_button = button("Vary", "edit")
        self.vary_button.setToolTip("Disguise and appearance variations (glasses, beard, hair, hood, ageing)")
        self.vary_button.setObjectName("ReconstructVary")
        self.backend = QComboBox()
        self.backend.setObjectName("ReconstructBackend")
        self.backend.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.backend.setMinimumContentsLength(9)
        self.backend.setToolTip("Where variations are computed")
        self.cloud_warning = label(CLOUD_WARNING, "badge-missing", True)
        self.cloud_warning.setObjectName("ReconstructCloudWarning")
        self.backend.currentIndexChanged.connect(self._backend_changed)
        self.save_button.clicked.connect(lambda: self._emit_for(self.save_requested))
        self.probe_button.clicked.connect(lambda: self._emit_for(self.probe_requested))
        self.vary_button.clicked.connect(self._vary)
        self.set_cloud_enabled(False)
        self._layout()
        self._source_changed()
        self._update_actions()

    def _layout(self) -> None:
        banner = label(BANNER, "baseline", True)
        banner.setObjectName("ReconstructBanner")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Source", self.source)
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(self.prompt, 1)
        prompt_row.addWidget(self.describe_button, 0, Qt.AlignmentFlag.AlignTop)
        form.addRow("Prompt", prompt_row)
        form.addRow("", self.attributes)
        for title, pairs in (("Sampling", (("Candidates", self.candidates), ("Seed", self.seed))),
                             ("", (("Steps", self.steps), ("Size", self.image_size)))):
            row = QHBoxLayout()
            for text, widget in pairs:
                row.addWidget(QLabel(text))
                row.addWidget(widget)
            row.addStretch(1)
            form.addRow(title, row)
        strengths = QHBoxLayout()
        for text, strength in (("Likeness", self.likeness), ("Face strength", self.face_strength)):
            strengths.addWidget(QLabel(text))
            strengths.addWidget(strength)
        strengths.addWidget(self.structure)
        self.control_preview = QLabel()
        self.control_preview.setObjectName("StructureLines")
        self.control_preview.setToolTip("The lines extracted from the sketch that the last structure run followed")
        self.control_preview.setVisible(False)
        strengths.addWidget(self.control_preview)
        strengths.addStretch(1)
        form.addRow("Guidance", strengths)
        run = QHBoxLayout()
        run.addWidget(self.generate_button)
        run.addWidget(self.cancel_button)
        run.addWidget(self.status, 1)
        actions = QHBoxLayout()
        actions.addWidget(self.save_button)
        actions.addWidget(self.probe_button)
        actions.addStretch(1)
        actions.addWidget(self.vary_button)
        actions.addWidget(self.backend)
        choices = QWidget()
        choices.setLayout(form)
        self.choices = QScrollArea()  # scrolls when docks leave the panel less height than its choices need
        self.choices.setObjectName("ReconstructChoices")
        self.choices.setWidget(choices)
        self.choices.setWidgetResizable(True)
        self.choices.setFrameShape(QFrame.Shape.NoFrame)
        self.choices.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.choices.setMinimumHeight(90)
        self.choices.setMaximumHeight(choices.sizeHint().height() + 4)
        # The strip takes what the choices leave (its own size hint must not squeeze them into scrolling).
        self.strip.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.strip.setMinimumHeight(110)
        self.choices.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.addWidget(banner)
        layout.addWidget(self.choices, 0)
        layout.addLayout(run)
        layout.addWidget(self.strip, 1)
        layout.addLayout(actions)
        layout.addWidget(self.cloud_warning)

    # -- state the controller sets --------------------------------------------------------------
    def settings(self) -> GenerateSettings:
        """The current choices as the engine lane needs them."""
        seed = self.seed.value()
        return GenerateSettings(
            prompt=self.prompt.toPlainText().strip(), num_candidates=self.candidates.value(),
            seed=None if seed < 0 else seed, steps=self.steps.value(), size=self.image_size.value() // 8 * 8,
            likeness_strength=self.likeness.value(), face_strength=self.face_strength.value(),
            structure=self.structure.isChecked())

    @property
    def source_kind(self) -> str:
        return str(self.source.currentData())

    def set_running(self, running: bool, message: str = "") -> None:
        self.generate_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.describe_button.setEnabled(not running)
        if message:
            self.status.setText(message)
        self._update_actions(running)

    def set_attributes(self, attrs: Any, prompt: str) -> None:
        """Show each attribute with its confidence and put the suggested prompt in the (editable) box."""
        parts = [f"{s.value} {s.confidence:.0%}" for s in attrs.scores.values()]
        self.attributes.setText("Read from the sketch: " + " · ".join(parts))
        model = f" by {attrs.model}" if getattr(attrs, "model", "") else ""
        self.attributes.setToolTip("\n".join(f"{n.replace('_', ' ')}: {s.value} ({s.confidence:.0%})"
                                             for n, s in attrs.scores.items())
                                   + f"\nRead locally{model}; below 50 % an attribute stays out of the prompt.")
        self.prompt.setPlainText(prompt)

    def set_cloud_enabled(self, enabled: bool) -> None:
        """Offer the Replicate backend only when Settings switched it on (no silent network)."""
        self.backend.blockSignals(True)
        self.backend.clear()
        self.backend.addItem("this computer", BACKEND_LOCAL)
        if enabled:
            self.backend.addItem("Replicate (cloud: uploads)", BACKEND_REPLICATE)
        self.backend.blockSignals(False)
        self._backend_changed()

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def outputs(self) -> list[GeneratedOutput]:
        """The outputs in the strip, in order."""
        return list(self.strip.outputs)

    def add_output(self, output: GeneratedOutput) -> None:
        """One more output, streamed in while the rest still generate."""
        self.strip.add_output(output)
        self._update_actions()

    def cloud_offered(self) -> bool:
        return self.backend.count() > 1

    def show_outputs(self, outputs: list[GeneratedOutput], keep_previous: bool = False) -> None:
        keep = list(self.strip.outputs) if keep_previous else []
        self.strip.replace_outputs(keep, outputs)
        self._update_actions()

    def show_control_image(self, image: Any) -> None:
        """Show the structure lines the ControlNet followed (hidden when structure was off)."""
        if image is None:
            self.control_preview.clear()
            self.control_preview.setVisible(False)
            return
        from PySide6.QtGui import QPixmap

        from sketchface_desktop.views.reconstruct_strip import pil_to_qimage

        pix = QPixmap.fromImage(pil_to_qimage(image)).scaled(
            56, 56, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.control_preview.setPixmap(pix)
        self.control_preview.setVisible(True)

    # -- internals ------------------------------------------------------------------------------
    def _source_changed(self) -> None:
        plus = self.source_kind == SOURCE_CANDIDATE
        self.face_strength.setEnabled(plus)
        self.source.setToolTip(
            "The sketch's embedding drives the face; the candidate selected in Results adds its photo's "
            "structure (FaceID Plus v2)." if plus else "The sketch's embedding drives the face (IP-Adapter FaceID).")

    def _backend_changed(self) -> None:
        self.cloud_warning.setVisible(self.backend.currentData() == BACKEND_REPLICATE)

    def _update_actions(self, running: bool | None = None) -> None:
        busy = self.cancel_button.isEnabled() if running is None else running
        has = self.strip.current_output() is not None
        for b in (self.save_button, self.probe_button):
            b.setEnabled(has)
        self.vary_button.setEnabled(has and not busy)

    def _emit_for(self, signal: Any) -> None:
        output = self.strip.current_output()
        if output is not None:
            signal.emit(output)

    def _vary(self) -> None:
        output = self.strip.current_output()
        if output is not None:
            self.vary_requested.emit(output, str(self.backend.currentData()))
