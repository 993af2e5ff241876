"""The sketch canvas: drawing with pen pressure, undo/redo, face guide, scanned-sketch import."""

from sketchface_desktop.views.canvas.sketch_canvas import SketchCanvas
from sketchface_desktop.views.canvas.sketch_panel import SketchPanel

__all__ = ["SketchCanvas", "SketchPanel"]
