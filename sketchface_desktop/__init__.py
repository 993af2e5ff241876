"""SketchFace Workstation desktop application (PySide6).

Importing the package first repairs a PySide6 reference-count defect that would otherwise abort a
long session (see :mod:`sketchface_desktop.qt_fixes`). Without PySide6 (a headless server using
only the ``sketchface`` CLI) there is nothing to repair.
"""

try:
    from sketchface_desktop import qt_fixes
except ImportError:  # pragma: no cover - PySide6 absent: the CLI still works
    qt_fixes = None  # type: ignore[assignment]
else:
    qt_fixes.apply()
