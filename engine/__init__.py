"""SketchFace engine: the Qt-free core (faces, galleries, search, sketch encoder, generation, cases)."""

__version__ = "0.1.0"
