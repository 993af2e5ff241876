"""ModelsPage: which models are installed, verified or missing; import a bundle, download, verify.

Status is read in the io lane (it only stats files and reads cached digests); verify, import and
download go to the engine lane with progress and cancel, because they read or write gigabytes.
Nothing is downloaded unless the examiner clicks Download and confirms the source (no silent network).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.models_controller import ModelsController
from sketchface_desktop.ops import settings as settings_ops
from sketchface_desktop.views import assets
from sketchface_desktop.views.ui import button, label

COLUMNS = ("Model", "Used for", "Installed", "Integrity")
DEMO_MODELS = "DEMO models (random weights)"
# A pin recorded at first import proves the file has not changed since, not that it is the publisher's file.
_STATE_TEXT = {"published": "matches the publisher's SHA-256", "pinned at first import": "pinned at first import",
               "unchecked": "not yet checked", "not pinned": "no digest known",
               "mismatch": "DIFFERS from expected", "not installed": "—"}


class ModelsPage(QWidget):
    """The Models page of the settings dialog (also opened from the first-run guide).

    Signals:
        models_changed(): a model was imported, downloaded or verified (the window refreshes its status).
    """

    models_changed = Signal()

    def __init__(self, models: ModelsController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ModelsPage")
        self.models = models
        self.rows: list[Any] = []
        self.demo_notice = settings_ops.demo_notice()  # the demo home's stand-ins are never shown as ready
        self.demo_banner = label(f"{DEMO_MODELS}: {self.demo_notice}", "badge-missing", True)
        self.demo_banner.setObjectName("DemoModelsBanner")
        self.demo_banner.setVisible(bool(self.demo_notice))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("ModelsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 210)
        for col in (2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.detail = label("Select a model to see where it goes, its licence and how to get it.", "subtle", True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setMinimumHeight(64)
        self.import_button = button("Import bundle…", "import-scan")
        self.import_button.setToolTip("Install models from a folder or .zip (offline)")
        menu = QMenu(self.import_button)
        menu.addAction(assets.icon("open"), "From a folder…", lambda: self.import_bundle(folder=True))
        menu.addAction(assets.icon("import-scan"), "From a .zip or model file…", lambda: self.import_bundle(folder=False))
        self.import_button.setMenu(menu)
        self.download_button = button("Download…", "download")
        self.download_button.clicked.connect(self.download_selected)
        self.verify_button = button("Verify all", "verify")
        self.verify_button.setToolTip("Read every installed model file and check its SHA-256")
        self.verify_button.clicked.connect(self.verify_all)
        self.refresh_button = button("Refresh", "rebuild")
        self.refresh_button.clicked.connect(self.refresh)
        buttons = QHBoxLayout()
        for b in (self.import_button, self.download_button, self.verify_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addWidget(label("Models", "heading"))
        layout.addWidget(label("Models are supplied by you (their licences differ). Import an offline bundle, "
                               "or download on a machine with internet; files are checked by SHA-256.",
                               "subtle", True))
        layout.addWidget(self.demo_banner)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail)
        layout.addLayout(buttons)
        self._selection_changed()
        self.refresh()

    def refresh(self) -> None:
        self.models.status(self.set_rows)

    def set_rows(self, rows: list[Any]) -> None:
        self.rows = list(rows)
        self.table.setRowCount(len(self.rows))
        for r, st in enumerate(self.rows):
            name = QTableWidgetItem(assets.icon("model"), st.title)
            name.setToolTip(f"{st.title}\n{st.id}")
            used = QTableWidgetItem(", ".join(st.required_for[:2]) + ("…" if len(st.required_for) > 2 else ""))
            used.setToolTip(", ".join(st.required_for))
            demo = bool(self.demo_notice and st.installed)
            inst = QTableWidgetItem(assets.icon("warning" if demo else "possible" if st.installed else "excluded"),
                                    DEMO_MODELS if demo else "installed" if st.installed else "missing")
            ver = QTableWidgetItem(_STATE_TEXT.get(st.verified, st.verified) if st.installed else "—")
            if st.verified == "mismatch":
                ver.setForeground(Qt.GlobalColor.darkRed)
            for c, item in enumerate((name, used, inst, ver)):
                self.table.setItem(r, c, item)
        self._selection_changed()

    def selected(self) -> Any | None:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()] if rows and rows[0].row() < len(self.rows) else None

    def _selection_changed(self) -> None:
        st = self.selected()
        self.download_button.setEnabled(bool(st and st.downloadable and not st.installed))
        if st is None:
            return
        lines = [f"{st.title} — folder {st.path}", f"Licence: {st.licence}"]
        if st.missing:
            lines.append("Missing: " + ", ".join(st.missing))
        if st.hint:
            lines.append(st.hint)
        self.detail.setText("\n".join(lines))

    def _after(self, title: str) -> Any:
        def done(value: Any) -> None:
            self.refresh()
            self.models_changed.emit()
            if isinstance(value, list) and value and hasattr(value[0], "state"):
                bad = [v.title for v in value if not v.ok]
                QMessageBox.information(self, title, "All installed model files match their digests." if not bad
                                        else "These models differ from what was installed:\n" + "\n".join(bad))
        return done

    def import_bundle(self, path: str | None = None, folder: bool = True) -> None:
        """Install models from ``path`` (asked for when None) in the engine lane, with progress and cancel."""
        if not path:
            path = (QFileDialog.getExistingDirectory(self, "Import model folder") if folder else
                    QFileDialog.getOpenFileName(self, "Import model bundle", "",
                                                "Model bundles (*.zip *.onnx *.safetensors *.bin)")[0])
        if not path:
            return

        self.models.import_bundle(path, self._after("Import models"))

    def download_selected(self) -> None:
        st = self.selected()
        if st is None:
            return
        ok = QMessageBox.question(
            self, "Download model",
            f"Download {st.title} from {st.source}?\n\nThis connects to the internet. Licence: {st.licence}")
        if ok != QMessageBox.StandardButton.Yes:
            return
        self.models.download(st.id, st.title, self._after("Download model"))

    def verify_all(self) -> None:
        self.models.verify_all(self._after("Verify models"))
