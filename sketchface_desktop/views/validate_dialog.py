"""ValidationDialog (Tools > Validate): run a validation on solved cases, see its plots, adopt its calibration.

The dialog only gathers choices and shows results; the work runs as ops (``ops.validate``) on the
window's job hub, so it is listed, shown with progress and cancellable like every long job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QScrollArea,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.ops import galleries as gallery_ops
from sketchface_desktop.ops import validate as validate_ops
from sketchface_desktop.views.ui import button, label, primary_button

if TYPE_CHECKING:
    from sketchface_desktop.engine_session import EngineSession
    from sketchface_desktop.ops.base import Runner
    from sketchface_desktop.workers import Job

ENCODERS = (("both", "Trained encoder and ArcFace baseline"), ("trained", "Trained sketch encoder"),
            ("baseline", "ArcFace baseline"))
NAMES = {"trained": "trained sketch encoder", "baseline": "ArcFace baseline"}
LAYOUT_HELP = ("A folder with sketches/ (one sketch per solved case, named by case) and either truth.csv "
               "(columns case,subject_id), photos/<case>.jpg (a gallery photo of the true person), or sketches "
               "named after the subject id.")


class PlotView(QLabel):
    """A plot image scaled to fit the visible area, aspect kept (the dialog is resizable for a closer look)."""

    def __init__(self, title: str) -> None:
        super().__init__(f"The {title} plot appears here after a run.")
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.source = QPixmap()
        self.setMinimumWidth(200)

    def set_png(self, png: bytes) -> None:
        self.source.loadFromData(png, "PNG")
        self._fit()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self.source.isNull():
            return
        parent = self.parentWidget()
        box = parent.size() if parent is not None else self.size()
        fitted = self.source.size().scaled(box, Qt.AspectRatioMode.KeepAspectRatio)
        if self.pixmap().isNull() or abs(self.pixmap().width() - fitted.width()) > 2:
            self.setPixmap(self.source.scaled(fitted, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation))


def _plot(title: str) -> tuple[QScrollArea, PlotView]:
    view = PlotView(title)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(view)
    return area, view


class ValidationDialog(QDialog):
    """The validation window: choices, progress, plots and summary, "Use this calibration".

    Signals:
        calibration_adopted(str): the encoder whose calibration was stored (results can refresh their notes).
    """

    calibration_adopted = Signal(str)

    def __init__(self, runner: Runner, session: EngineSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Validate on solved cases")
        self.setObjectName("ValidationDialog")
        self.runner, self.session = runner, session
        self.job: Job | None = None
        self.outcome: validate_ops.ValidationOutcome | None = None
        self.cases_dir = QLineEdit()
        self.cases_dir.setPlaceholderText("Folder of solved cases")
        self.cases_dir.setToolTip(LAYOUT_HELP)
        browse = button("Browse…", "open")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.cases_dir, 1)
        row.addWidget(browse)
        self.gallery = QComboBox()
        self.encoder = QComboBox()
        for key, text in ENCODERS:
            self.encoder.addItem(text, key)
        self.group_by = QLineEdit()
        self.group_by.setPlaceholderText("sex, age band always; more metadata keys, comma separated")
        form = QFormLayout()
        form.addRow("Solved cases", row)
        form.addRow("", label(LAYOUT_HELP, "subtle", wrap=True))
        form.addRow("Gallery", self.gallery)
        form.addRow("Encoder", self.encoder)
        form.addRow("Also group by", self.group_by)
        self.run_button = primary_button("Run validation", "search")
        self.cancel_button = button("Cancel", "cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = label("", "subtle", wrap=True)
        self.status.setObjectName("ValidationStatus")
        self.tabs = QTabWidget()
        self.summary = QTextBrowser()
        self.summary.setObjectName("ValidationSummary")
        self.plots: dict[str, PlotView] = {}
        self.tabs.addTab(self.summary, "Summary")
        for key, title in (("cmc", "CMC"), ("groups", "Groups"), ("scores", "Scores")):
            area, view = _plot(title)
            self.plots[key] = view
            self.tabs.addTab(area, title)
        self.adopt_encoder = QComboBox()
        self.adopt_encoder.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.adopt_button = button("Use this calibration", "possible")
        self.adopt_button.setToolTip("Results and case reports then say what a score meant in this validation")
        self.save_button = button("Save report…", "download")
        for w in (self.adopt_button, self.save_button, self.adopt_encoder):
            w.setEnabled(False)
        actions = QHBoxLayout()
        actions.addWidget(self.run_button)
        actions.addWidget(self.cancel_button)
        actions.addWidget(self.progress, 1)
        after = QHBoxLayout()
        after.addWidget(self.adopt_encoder)
        after.addWidget(self.adopt_button)
        after.addStretch(1)
        after.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(actions)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(after)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.adopt_button.clicked.connect(self.adopt)
        self.save_button.clicked.connect(self._save)
        self.resize(900, 760)
        gallery_ops.list_galleries(session).success(self._set_galleries).failure(self._failed).run(runner)

    # -- choices -------------------------------------------------------------------------------
    def _set_galleries(self, infos: list[Any]) -> None:
        self.gallery.clear()
        for info in infos:
            self.gallery.addItem(f"{info.name} ({info.faces:,} faces)", info.id)
        if not infos:
            self.status.setText("No gallery yet: create one and import photos first.")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of solved cases", self.cases_dir.text())
        if folder:
            self.cases_dir.setText(folder)

    def group_keys(self) -> list[str]:
        extra = [k.strip() for k in self.group_by.text().split(",") if k.strip()]
        return list(dict.fromkeys(["sex", "age_band", *extra]))

    # -- running -------------------------------------------------------------------------------
    def start(self) -> Job | None:
        """Queue the validation (engine lane); its progress and result come back to this dialog."""
        if not self.cases_dir.text().strip() or self.gallery.currentData() is None:
            self.status.setText("Choose the folder of solved cases and a gallery.")
            return None
        op = validate_ops.run_validation(self.session, self.cases_dir.text().strip(), self.gallery.currentData(),
                                         self.encoder.currentData(), self.group_keys())
        self.job = job = op.success(self._show).failure(self._failed).finished(self._settled).run(self.runner)
        job.progress.connect(self._progress)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Validating…")
        return job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)
        self.progress.setFormat(message or "%p %")

    def _settled(self, job: Job) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if job.state.value == "cancelled":
            self.status.setText("Cancelled.")

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(str(exc))

    # -- results -------------------------------------------------------------------------------
    def _show(self, outcome: validate_ops.ValidationOutcome) -> None:
        self.outcome = outcome
        d = outcome.doc
        for key, view in self.plots.items():
            png = outcome.pngs.get(key)
            if png:
                view.set_png(png)
            else:
                view.setText("Nothing to show (no grouping keys).")
        self.summary.setHtml(summary_html(d))
        self.adopt_encoder.clear()
        for name in d["encoders"]:
            self.adopt_encoder.addItem(NAMES.get(name, name), name)
        for w in (self.adopt_button, self.save_button, self.adopt_encoder):
            w.setEnabled(True)
        self.status.setText(f"{d['cases']['validated']} of {d['cases']['found']} solved cases validated against "
                            f"{d['gallery']['name']} ({d['gallery']['subjects']:,} subjects).")

    def adopt(self) -> None:
        """Store the calibration of the chosen encoder from this run."""
        if self.outcome is None:
            return
        name = self.adopt_encoder.currentData()
        op = validate_ops.adopt_calibration(self.outcome, name)
        op.success(lambda path: self._adopted(name, path)).failure(self._failed).run(self.runner)

    def _adopted(self, name: str, path: str) -> None:
        self.status.setText(f"Calibration of the {NAMES.get(name, name)} stored ({path}). Search results and case "
                            "reports now say what a score meant in this validation.")
        self.calibration_adopted.emit(name)

    def _save(self) -> None:
        if self.outcome is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Save the validation report into")
        if folder:
            self.save_to(folder)

    def save_to(self, folder: str) -> None:
        if self.outcome is None:
            return
        op = validate_ops.save_outputs(self.outcome, folder)
        op.success(lambda files: self.status.setText(f"Saved: {files['pdf']} and {len(files) - 1} more file(s).")
                   ).failure(self._failed).run(self.runner)


def summary_html(d: dict[str, Any]) -> str:
    """The hit-rate table (both encoders side by side), notes and left-out cases, as HTML."""
    names = list(d["encoders"])
    head = "".join(f"<th>{NAMES.get(n, n)}</th>" for n in names)
    rows = []
    for r in d["ranks"]:
        cells = "".join(
            "<td>{:.1f} % ({:.1f}–{:.1f}) · {}/{}</td>".format(
                100 * x["rate"], 100 * x["low"], 100 * x["high"], x["hits"], x["n"])
            for x in (d["encoders"][n]["hit_rates"][str(r)] for n in names))
        rows.append(f"<tr><td>top {r}</td>{cells}</tr>")
    notes = "".join(f"<p style='color:#b03030'>{n}</p>" for n in d["notes"])
    left = "".join(f"<li>{u['case']}: {u['reason']}</li>" for u in d["cases"]["unresolved"])
    return (f"<p>Share of solved cases with the true person at rank k or better, with 95 % intervals.</p>"
            f"<table cellpadding='4'><tr><th>Rank</th>{head}</tr>{''.join(rows)}</table>{notes}"
            + (f"<p>Left out:</p><ul>{left}</ul>" if left else ""))


_OPEN: list[ValidationDialog] = []  # a reference for each open dialog (Qt owns it; Python must too)


def open_validation(runner: Runner, session: EngineSession, parent: QWidget | None = None) -> ValidationDialog:
    """Show the validation dialog (Tools > Validate)."""
    dialog = ValidationDialog(runner, session, parent)
    _OPEN.append(dialog)
    dialog.finished.connect(lambda _r: _OPEN.remove(dialog) if dialog in _OPEN else None)
    dialog.show()
    return dialog
