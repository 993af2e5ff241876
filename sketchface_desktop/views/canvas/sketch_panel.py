"""SketchPanel: the canvas with its tool bar (tools, brush size, undo/redo, zoom, guide, scan import, export).

The panel owns the drawing actions and their shortcuts; the main window lists the same actions in its
menus so every shortcut works wherever the focus is in the window.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QSlider,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.views import assets
from sketchface_desktop.views.canvas.sketch_canvas import SketchCanvas
from sketchface_desktop.views.canvas.strokes import fit_on_paper
from sketchface_desktop.views.ui import label, make_action

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp)"


class SketchPanel(QWidget):
    """The sketch area of the main window.

    Signals:
        sketch_changed(): the drawing changed (the window marks the sketch as unsaved).
        save_requested(): the user asked to save the sketch as a new version in the case.
    """

    sketch_changed = Signal()
    save_requested = Signal()

    top: QWidget  # built by _build_toolbar
    size_slider: QSlider

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SketchPanel")
        self.canvas = SketchCanvas(self)
        self.toolbar = QToolBar("Sketch tools", self)
        self.toolbar.setObjectName("SketchToolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self._build_actions()
        self._build_toolbar()
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        body.addWidget(self.toolbar)
        body.addWidget(self.canvas, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.top)
        layout.addLayout(body, 1)
        self.canvas.changed.connect(self.sketch_changed)
        self.canvas.changed.connect(self._show_state)
        self.canvas.undo_stack.cleanChanged.connect(self._show_state)
        self.canvas.tool_changed.connect(self._sync_tool)
        self.canvas.guide_changed.connect(lambda: self.act_guide.setChecked(self.canvas.guide_visible))

    def _build_actions(self) -> None:
        c = self.canvas
        self.act_pen = make_action(self, "pen", "Pen", "P", "Pen: draw (pressure-sensitive with a tablet)", True)
        self.act_eraser = make_action(self, "eraser", "Eraser", "E", "Eraser", True)
        self.act_guide_tool = make_action(self, "crop", "Place face guide", "Shift+G",
                                          "Drag a rectangle to place the face guide", True)
        self.act_pan = make_action(self, "pan", "Pan", "H", "Pan (or hold Space, or drag with the middle button)", True)
        group = QActionGroup(self)
        for action, tool in ((self.act_pen, "pen"), (self.act_eraser, "eraser"),
                             (self.act_guide_tool, "guide"), (self.act_pan, "pan")):
            group.addAction(action)
            action.triggered.connect(lambda _=False, t=tool: c.set_tool(t))
        self.act_pen.setChecked(True)
        self.act_guide = make_action(self, "guide", "Face guide", "G",
                                     "Show the face guide; it also tells the search where the face is", True)
        self.act_guide.toggled.connect(c.set_guide_visible)
        self.act_undo = c.undo_stack.createUndoAction(self, "Undo")
        self.act_undo.setIcon(assets.icon("undo"))
        self.act_undo.setShortcut(QKeySequence.StandardKey.Undo)
        self.act_redo = c.undo_stack.createRedoAction(self, "Redo")
        self.act_redo.setIcon(assets.icon("redo"))
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.act_clear = make_action(self, "clear", "Clear sheet", "Ctrl+Shift+Backspace")
        self.act_clear.triggered.connect(c.clear)
        self.act_zoom_in = make_action(self, "zoom-in", "Zoom in", "Ctrl+=")
        self.act_zoom_in.triggered.connect(lambda: c.zoom_by(1.25))
        self.act_zoom_out = make_action(self, "zoom-out", "Zoom out", "Ctrl+-")
        self.act_zoom_out.triggered.connect(lambda: c.zoom_by(0.8))
        self.act_fit = make_action(self, "zoom-fit", "Fit to window", "Ctrl+0")
        self.act_fit.triggered.connect(c.fit_to_window)
        self.act_smaller = make_action(self, None, "Smaller brush", "[")
        self.act_smaller.triggered.connect(lambda: self.size_slider.setValue(self.size_slider.value() - 1))
        self.act_bigger = make_action(self, None, "Bigger brush", "]")
        self.act_bigger.triggered.connect(lambda: self.size_slider.setValue(self.size_slider.value() + 1))
        self.act_import = make_action(self, "import-scan", "Import scanned sketch…", "Ctrl+I")
        self.act_import.triggered.connect(self.import_scan)
        self.act_export = make_action(self, "export", "Export sketch as PNG…", "Ctrl+Shift+E")
        self.act_export.triggered.connect(self.export_png)
        self.act_save = make_action(self, "save", "Save sketch version", QKeySequence.StandardKey.Save,
                                    "Save the sketch into the case as a new version")
        self.act_save.triggered.connect(self.save_requested)
        for action in self.actions_list():
            self.addAction(action)

    def actions_list(self) -> list[QAction]:
        return [self.act_pen, self.act_eraser, self.act_guide_tool, self.act_pan, self.act_guide, self.act_undo,
                self.act_redo, self.act_clear, self.act_zoom_in, self.act_zoom_out, self.act_fit,
                self.act_smaller, self.act_bigger, self.act_import, self.act_export, self.act_save]

    def _build_toolbar(self) -> None:
        """Tools in a vertical strip beside the sheet (like a drawing program); brush size and state on top."""
        tb = self.toolbar
        tb.setOrientation(Qt.Orientation.Vertical)
        groups = ((self.act_pen, self.act_eraser, self.act_pan), (self.act_undo, self.act_redo, self.act_clear),
                  (self.act_guide, self.act_guide_tool), (self.act_import, self.act_export, self.act_save))
        tb.setIconSize(QSize(20, 20))
        for i, group in enumerate(groups):
            if i:
                tb.addSeparator()
            for action in group:
                tb.addAction(action)
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setObjectName("BrushSize")
        self.size_slider.setRange(1, 40)
        self.size_slider.setValue(int(self.canvas.brush_size))
        self.size_slider.setFixedWidth(100)
        self.size_slider.setToolTip("Brush size ([ and ])")
        self.size_label = QLabel(f"{int(self.canvas.brush_size)} px")
        self.size_label.setMinimumWidth(40)
        self.size_slider.valueChanged.connect(self._size_changed)
        size_icon = QLabel()
        size_icon.setPixmap(assets.svg_pixmap("brush-size", 20))
        size_icon.setToolTip("Brush size")
        self.zoom_label = label("", "subtle")
        self.zoom_label.setMinimumWidth(48)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.state_label = label("", "subtle")
        self.state_label.setObjectName("SketchState")
        self.top = QWidget()
        self.top.setObjectName("SketchTopBar")
        top = QHBoxLayout(self.top)
        top.setContentsMargins(8, 4, 8, 4)
        top.addWidget(size_icon)
        top.addWidget(self.size_slider)
        top.addWidget(self.size_label)
        top.addStretch(1)
        top.addWidget(self.state_label)
        top.addSpacing(12)
        for action in (self.act_zoom_out, self.act_zoom_in, self.act_fit):
            zoom_button = QToolButton()
            zoom_button.setDefaultAction(action)
            zoom_button.setIconSize(QSize(18, 18))
            top.addWidget(zoom_button)
        top.addWidget(self.zoom_label)

    def _show_state(self, *_args: object) -> None:
        stack = self.canvas.undo_stack
        self.state_label.setText("" if stack.count() == 0 else ("Saved" if stack.isClean() else "Unsaved"))

    def _size_changed(self, value: int) -> None:
        self.canvas.set_brush_size(value)
        self.size_label.setText(f"{value} px")

    def _sync_tool(self, tool: str) -> None:
        {"pen": self.act_pen, "eraser": self.act_eraser, "guide": self.act_guide_tool,
         "pan": self.act_pan}[tool].setChecked(True)

    def import_scan(self, path: str | None = None) -> bool:
        """Ask for a scanned sketch, let the user adjust it, and place it on the sheet (undoable)."""
        from sketchface_desktop.views.canvas.scan_import import (  # numpy: not at start-up
            ScanImportDialog,
            load_scan,
        )

        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Import scanned sketch", "", IMAGE_FILTER)
            if not path:
                return False
        try:
            image = load_scan(path)
        except ValueError as exc:
            QMessageBox.warning(self, "Import scanned sketch", str(exc))
            return False
        dialog = ScanImportDialog(image, self)
        if dialog.exec() != ScanImportDialog.DialogCode.Accepted:
            return False
        sheet = self.canvas.image
        self.canvas.load_image(fit_on_paper(dialog.result_image(), sheet.width(), sheet.height()),
                               f"Import {Path(path).name}")
        return True

    def export_png(self, path: str | None = None) -> bool:
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export sketch", "sketch.png", "PNG image (*.png)")
            if not path:
                return False
        Path(path).write_bytes(self.canvas.to_png_bytes())
        return True
