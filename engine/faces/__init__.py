"""Face pipeline: decode, detect (SCRFD), align (5-point, 112), embed (ArcFace), quality.

Heavy dependencies (onnxruntime, insightface) load when a :class:`FacePipeline` is built, not on import;
:func:`load_pipeline` is the one factory of it from the installed models.
"""

from engine.faces.decode import IMAGE_SUFFIXES, MAX_PIXELS, encode_jpeg, encode_png, is_image_name, load_image
from engine.faces.pipeline import (
    ALIGNED_SIZE,
    DETECTOR_ID,
    EMBEDDING_DIM,
    RECOGNIZER_ID,
    FacePipeline,
    centre_crop,
    l2_normalize,
    load_pipeline,
)
from engine.faces.quality import blur_score, face_quality

__all__ = [
    "ALIGNED_SIZE", "DETECTOR_ID", "EMBEDDING_DIM", "IMAGE_SUFFIXES", "MAX_PIXELS", "RECOGNIZER_ID",
    "FacePipeline", "blur_score", "centre_crop", "encode_jpeg", "encode_png", "face_quality",
    "is_image_name", "l2_normalize", "load_image", "load_pipeline",
]
