"""Generation: reconstruction from the sketch embedding (IP-Adapter FaceID), attributes, variations.

Names are re-exported lazily so ``import engine.generate`` stays light; torch, diffusers and open_clip
load only when a model is first used. Entry points for front-ends:

- :class:`Reconstructor` + :class:`ReconstructionRequest` -> :class:`ReconstructionResult`
- :class:`AttributeModel` -> :class:`SketchAttributes`; :func:`prompt_from_attributes`
- :func:`edits_for`, :func:`run_variations` with :class:`LocalEditor` or :class:`ReplicateBackend`
- :func:`read_record` to read the provenance of a saved output
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Reconstructor": "engine.generate.reconstruct",
    "ModelLocator": "engine.generate.model_set",
    "AttributeModel": "engine.generate.attributes",
    "SketchAttributes": "engine.generate.attributes",
    "AttributeScore": "engine.generate.attributes",
    "prompt_from_attributes": "engine.generate.attributes",
    "EDITS": "engine.generate.variations",
    "EditOptions": "engine.generate.variations",
    "LocalEditor": "engine.generate.variations",
    "edits_for": "engine.generate.variations",
    "run_variations": "engine.generate.variations",
    "ReplicateBackend": "engine.generate.replicate_backend",
    "ReplicateConfig": "engine.generate.replicate_backend",
    "UploadNotice": "engine.generate.replicate_backend",
    "read_record": "engine.generate.provenance",
    "add_mark": "engine.generate.provenance",
    "FaceTools": "engine.generate.identity",
    **{name: "engine.generate.types" for name in (
        "BackendDisabled", "Candidate", "DEFAULT_NEGATIVE_PROMPT", "EditSpec", "GenerationFailed",
        "GenerationRefused", "ReconstructionRequest", "ReconstructionResult", "RemoteError", "RuntimeOptions",
        "VariationReport", "VariationResult")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
