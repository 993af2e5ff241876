"""The ArcFace space: which ArcFace file made a vector, and the one refusal to compare two spaces.

Why: embeddings from two different ArcFace files live in different spaces; comparing them gives
confident nonsense. Galleries record the digest of the file that embedded them, a trained sketch
encoder records the digest it was trained against, and every search, re-run and validation refuses a
mismatch through :func:`require_same_arcface` (one message, one exception type). The digest is the one
the pipeline checked when it loaded the file (:mod:`engine.models.identity`, cached by file identity
in :mod:`engine.models.digests`). It sits below faces, sketch and gallery so each of them can use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from engine.errors import ModelInvalid
from engine.models.digests import sha256_cached
from engine.models.identity import ref_for_path


class Recognizer(Protocol):
    """What the digest needs of a face pipeline (:class:`engine.faces.FacePipeline`): its ArcFace file."""

    @property
    def recognizer_path(self) -> Path: ...


def model_file_sha256(path: Path, model_id: str | None = None) -> str:
    """Digest of a model file: checked against its pin when it is in the models folder, else only hashed."""
    ref = ref_for_path(Path(path))
    return ref.sha256 if ref is not None else sha256_cached(Path(path))


def recognizer_sha256(pipeline: Recognizer) -> str:
    """Digest of the ArcFace file a :class:`engine.faces.FacePipeline` runs (checked when it was loaded)."""
    sha = getattr(pipeline, "recognizer_sha256", None)
    return str(sha) if isinstance(sha, str) else model_file_sha256(pipeline.recognizer_path)


def require_same_arcface(have: str | None, expected: str | None, *, what: str, against: str,
                         hint: str = "Install the matching ArcFace file (or the sketch encoder trained for it), "
                                     "or re-import the photos in a new gallery with the installed one.") -> None:
    """Refuse to compare vectors of two ArcFace spaces; either digest None skips the check (not recorded).

    Args:
        have: the ArcFace SHA-256 of ``what`` (a gallery, a sketch encoder's training, the installed file).
        expected: the ArcFace SHA-256 it will be compared with (of ``against``).

    Raises:
        ModelInvalid: the digests differ.
    """
    if not have or not expected or have.lower() == expected.lower():
        return
    raise ModelInvalid(f"The {what} belongs to ArcFace file {have[:12]}…, but the {against} uses ArcFace "
                       f"{expected[:12]}…: their vectors would not be comparable and the scores would be "
                       "meaningless.", hint=hint)
