"""SketchFace Workstation desktop application (PySide6)."""
