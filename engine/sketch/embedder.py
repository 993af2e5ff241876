"""Sketch -> 512-D ArcFace-space vector: the trained encoder, or ArcFace itself as a labelled baseline.

``engine.search`` asks :func:`load_sketch_embedder` for an embedder and records what it is (an
``EmbedderRef``: kind ``sketch_encoder`` or ``arcface_baseline`` and the weights' SHA-256) with each
search, so a search can be re-run with the same models. :func:`embed_sketch` is the one way a sketch
image and its face box become a vector: search and reconstruction both call it, so the same sketch
with the same guide is the same point in ArcFace space in both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from engine import models, runtime
from engine.arcface import recognizer_sha256, require_same_arcface
from engine.errors import InvalidRequest, ModelInvalid
from engine.faces.decode import load_image
from engine.faces.pipeline import RECOGNIZER_ID, l2_normalize, load_pipeline
from engine.fsutil import sha256_bytes
from engine.models import digests
from engine.models.identity import FileRef, LoadedFile
from engine.models.store import file_sha256  # the one home of an installed model file's digest
from engine.sketch.checkpoint import load_config, load_encoder
from engine.sketch.config import (
    CONFIG_NAME,
    ONNX_NAME,
    WEIGHTS_NAME,
    EncoderConfig,
    PreprocessConfig,
    check_arcface_compatible,
)
from engine.sketch.preprocess import check_face_box, crop_sketch, preprocess

if TYPE_CHECKING:
    from engine.faces.pipeline import FacePipeline

log = logging.getLogger(__name__)

MODEL_ID = "sketch_encoder"
FaceBoxLike = Sequence[float] | None


@runtime_checkable
class SketchEmbedder(Protocol):
    """What search needs from a sketch embedder.

    Attributes:
        is_baseline: True when ArcFace embeds the sketch itself (no trained encoder): results must be
            labelled as a weak baseline.
        model_sha256: SHA-256 of the weights that embed the sketch.
        arcface_sha256: SHA-256 of the ArcFace file whose space the vectors live in.
        backend: "torch", "onnxruntime" or "arcface-baseline".
        preprocess_config: the crop and normalisation it applies (``engine.sketch.preprocess``).
    """

    is_baseline: bool
    model_sha256: str | None
    arcface_sha256: str | None
    backend: str

    @property
    def preprocess_config(self) -> PreprocessConfig: ...

    def embed(self, image_bgr: np.ndarray, face_box: FaceBoxLike = None) -> np.ndarray:
        """Unit 512-D float32 vector of one sketch (BGR/gray array; ``face_box`` = canvas guide)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Provenance for search records and reports."""
        ...


def installed_arcface_sha256() -> str | None:
    """SHA-256 of the installed ArcFace recognizer, or None when it is not installed."""
    return file_sha256(RECOGNIZER_ID) if models.installed(RECOGNIZER_ID) else None


class TrainedSketchEmbedder:
    """The trained sketch encoder, run by PyTorch or, when ``model.onnx`` exists, by onnxruntime.

    Args:
        ckpt_dir: folder with ``model.safetensors`` + ``config.json`` (+ optional ``model.onnx``).
        device: "auto", "cuda" or "cpu".
        backend: "auto" (onnxruntime when ``model.onnx`` exists), "onnx" or "torch".
        model_sha256: digest of the weights, when the caller already knows it.
    """

    is_baseline = False

    def __init__(self, ckpt_dir: str | Path, device: str = "auto", backend: str = "auto",
                 model_sha256: str | None = None, read: Callable[[str], bytes] | None = None) -> None:
        self.ckpt_dir = Path(ckpt_dir)
        # read: a file's checked bytes by name (installed models): loaded from memory, never reopened.
        config_data = read(CONFIG_NAME) if read is not None else None
        self.config: EncoderConfig = load_config(self.ckpt_dir, config_data)
        self.arcface_sha256 = self.config.arcface_sha256
        self.device = runtime.resolve_device(device)
        self.model_files: tuple[FileRef, ...] = ()  # set by load_sketch_embedder: the files as loaded
        onnx_path = self.ckpt_dir / ONNX_NAME
        if backend not in ("auto", "onnx", "torch"):
            raise ModelInvalid(f"Unknown sketch-encoder backend {backend!r}: use auto, onnx or torch.")
        if backend == "onnx" and not onnx_path.is_file():
            raise ModelInvalid(f"No ONNX export at {onnx_path}.", hint="Run 'sketchface sketch export-onnx'.")
        use_onnx = backend == "onnx" or (backend == "auto" and onnx_path.is_file())
        self._lock = threading.Lock()
        onnx_data = read(ONNX_NAME) if use_onnx and read is not None else None
        if use_onnx:
            import onnxruntime as ort

            self._session: Any = ort.InferenceSession(onnx_data if onnx_data is not None else str(onnx_path),
                                                      providers=runtime.ort_providers(device))
            self._input = self._session.get_inputs()[0].name
            self.backend = "onnxruntime"
            self._model: Any = None
        else:
            self._model, _ = load_encoder(self.ckpt_dir, device=self.device, config_data=config_data,
                                          weights_data=read(WEIGHTS_NAME) if read is not None else None)
            self._session = None
            self.backend = "torch"
        if model_sha256 is None:
            model_sha256 = digests.sha256_cached(self.ckpt_dir / WEIGHTS_NAME)
        self.model_sha256: str | None = model_sha256
        self.onnx_sha256: str | None = None
        if use_onnx:
            # through the module: tests swap digests.sha256_cached at runtime
            self.onnx_sha256 = (sha256_bytes(onnx_data) if onnx_data is not None
                                else digests.sha256_cached(onnx_path))

    @property
    def preprocess_config(self) -> PreprocessConfig:
        return self.config.preprocess

    def embed(self, image_bgr: np.ndarray, face_box: FaceBoxLike = None) -> np.ndarray:
        return self.embed_batch([image_bgr], [face_box])[0]

    def embed_batch(self, images: Sequence[np.ndarray], face_boxes: Sequence[FaceBoxLike] | None = None) -> np.ndarray:
        """Unit vectors (N x 512, float32) of several sketches (several drawings of one face, for fusion)."""
        boxes = list(face_boxes) if face_boxes is not None else [None] * len(images)
        if len(boxes) != len(images):
            raise InvalidRequest("face_boxes must have one entry per image.")
        if not images:
            return np.zeros((0, self.config.embed_dim), np.float32)
        batch = np.stack([preprocess(im, box, self.config.preprocess) for im, box in zip(images, boxes, strict=True)])
        return l2_normalize(self.forward(batch))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on preprocessed input (N x 3 x S x S float32); returns N x 512."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._session is not None:
            return np.asarray(self._session.run(None, {self._input: batch})[0], dtype=np.float32)
        import torch

        with self._lock, torch.inference_mode():
            out = self._model(torch.from_numpy(batch).to(self.device))
        return out.float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {"kind": "sketch_encoder", "baseline": False, "backend": self.backend, "device": self.device,
                "model_sha256": self.model_sha256, "onnx_sha256": self.onnx_sha256,
                "arcface_sha256": self.arcface_sha256, "architecture": self.config.architecture,
                "input_size": self.config.preprocess.input_size, "metrics": self.config.metrics}


class ArcFaceBaselineEmbedder:
    """ArcFace applied to the sketch itself: the labelled baseline when no encoder is trained.

    Why keep it: it lets a new installation search at all, and it is the yardstick a trained encoder
    must beat. The sketch is cropped to its face region (guide or ink box) first, then embedded with
    landmark alignment when the detector finds a face, else a centred crop.
    """

    is_baseline = True
    backend = "arcface-baseline"

    def __init__(self, pipeline: FacePipeline, arcface_sha256: str | None = None) -> None:
        self.pipeline = pipeline
        if arcface_sha256 is None:
            arcface_sha256 = recognizer_sha256(pipeline)
        self.arcface_sha256: str | None = arcface_sha256
        self.model_sha256: str | None = arcface_sha256
        self.last_landmark_aligned: bool | None = None
        self._pre = PreprocessConfig(margin=0.12, auto_invert=True)

    @property
    def preprocess_config(self) -> PreprocessConfig:
        return self._pre

    def embed(self, image_bgr: np.ndarray, face_box: FaceBoxLike = None) -> np.ndarray:
        crop = crop_sketch(image_bgr, face_box, self._pre)
        bgr = np.repeat(crop[:, :, None], 3, axis=2)
        vec, aligned = self.pipeline.embed_unaligned(bgr)
        self.last_landmark_aligned = aligned
        return l2_normalize(vec)

    def describe(self) -> dict[str, Any]:
        return {"kind": "arcface_baseline", "baseline": True, "backend": self.backend,
                "model_sha256": self.model_sha256, "arcface_sha256": self.arcface_sha256}


def embed_sketch(embedder: SketchEmbedder, image: np.ndarray | bytes, face_box: FaceBoxLike = None) -> np.ndarray:
    """Unit float32 vector of a sketch (array or encoded bytes) cropped to ``face_box`` (None: its ink).

    The one path from a sketch to ArcFace space for search, reconstruction and attributes, so the same
    sketch with the same guide gives the same encoder input everywhere.
    """

    bgr = load_image(bytes(image)) if isinstance(image, bytes | bytearray) else np.asarray(image)
    vec = np.asarray(embedder.embed(bgr, check_face_box(face_box)), dtype=np.float32).reshape(-1)
    return l2_normalize(vec)


def load_sketch_embedder(device: str = "auto", *, expected_arcface_sha256: str | None = None,
                         backend: str = "auto", against: str = "gallery") -> SketchEmbedder:
    """The trained encoder when installed, else the ArcFace baseline; refuses incompatible ArcFace spaces.

    Args:
        device: "auto", "cuda" or "cpu".
        expected_arcface_sha256: the ArcFace SHA-256 the vectors will be compared with (the gallery's);
            None compares with the installed ArcFace (when installed).
        backend: for the trained encoder: "auto", "onnx" or "torch".
        against: what ``expected_arcface_sha256`` belongs to, for the refusal message.

    Raises:
        ModelInvalid: the encoder (or, for the baseline, the installed ArcFace) belongs to another
            ArcFace model than the one expected.
        ModelMissing: neither an encoder nor the ArcFace models for the baseline are installed.
    """
    if expected_arcface_sha256 is None:
        expected_arcface_sha256, against = installed_arcface_sha256(), "installed ArcFace model"
    if models.installed(MODEL_ID):
        locator = models.ModelLocator()
        refs = {ref.file: ref for ref in locator.refs(MODEL_ID)}  # every file checked against its pin
        loaded: dict[str, LoadedFile] = {}

        def read(name: str) -> bytes:  # the file read once; those bytes checked, then loaded
            loaded[name] = locator.load(MODEL_ID, name, "sketch search")
            return loaded[name].data

        embedder = TrainedSketchEmbedder(models.model_dir(MODEL_ID), device=device, backend=backend,
                                         model_sha256=refs[WEIGHTS_NAME].sha256, read=read)
        if WEIGHTS_NAME in loaded:
            embedder.model_sha256 = loaded[WEIGHTS_NAME].ref.sha256
        embedder.model_files = tuple(loaded[f].ref if f in loaded else ref for f, ref in refs.items())
        check_arcface_compatible(embedder.arcface_sha256, expected_arcface_sha256, against=against)
        return embedder

    pipeline = load_pipeline(device)
    installed_sha = file_sha256(RECOGNIZER_ID)
    baseline = ArcFaceBaselineEmbedder(pipeline, arcface_sha256=installed_sha)
    require_same_arcface(installed_sha, expected_arcface_sha256, what="installed ArcFace model", against=against,
                         hint="Install that ArcFace file again, or re-import the gallery with the installed one.")
    log.info("no trained sketch encoder installed: using the ArcFace-on-sketch baseline")
    return baseline
