"""SHA-256 of the ArcFace file that embedded a gallery or a query: defined in :mod:`engine.arcface`
(below faces, sketch and gallery), named here for the gallery's callers."""

from engine.arcface import model_file_sha256, recognizer_sha256

__all__ = ["model_file_sha256", "recognizer_sha256"]
