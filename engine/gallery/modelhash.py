"""SHA-256 of the ArcFace file that embedded a gallery or a query.

Why: embeddings from two different ArcFace files live in different spaces; comparing them gives
confident nonsense. Galleries record the digest of the file that embedded them and search refuses a
mismatch. The digest is the one the pipeline checked when it loaded the file
(:mod:`engine.models.identity`, cached by file identity in :mod:`engine.models.digests`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.faces import FacePipeline


def model_file_sha256(path: Path, model_id: str | None = None) -> str:
    """Digest of a model file: checked against its pin when it is in the models folder, else only hashed."""
    from engine.models.digests import sha256_cached
    from engine.models.identity import ref_for_path

    ref = ref_for_path(Path(path))
    return ref.sha256 if ref is not None else sha256_cached(Path(path))


def recognizer_sha256(pipeline: FacePipeline) -> str:
    """Digest of the ArcFace file a :class:`engine.faces.FacePipeline` runs (checked when it was loaded)."""
    sha = getattr(pipeline, "recognizer_sha256", None)
    return str(sha) if isinstance(sha, str) else model_file_sha256(pipeline.recognizer_path)
