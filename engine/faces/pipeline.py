"""Detect, align, embed: the ArcFace face pipeline, loaded through insightface's own model code.

One :class:`FacePipeline` holds one detector and one recognizer session. onnxruntime sessions are
safe to run from several threads, so ingest workers share one pipeline. :func:`load_pipeline` is the
one factory for the installed models (device and detector size from the settings). Each ONNX file is
read once; those bytes are hashed, compared with the pin (for a file of the models folder) and handed to
onnxruntime, so the session runs exactly the bytes checked and recorded: a file (or a symlink) swapped
after the check is never the one that runs.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from engine import models, runtime
from engine import settings as settings_mod
from engine.errors import ModelInvalid, NoFaceFound
from engine.faces.quality import blur_score, face_quality
from engine.models.identity import DETECTOR, RECOGNIZER, FileRef, LoadedFile, ModelLocator, load_path
from engine.types import DetectedFace, FaceBox

if TYPE_CHECKING:
    from engine.settings import Settings

log = logging.getLogger(__name__)

DETECTOR_ID = DETECTOR
RECOGNIZER_ID = RECOGNIZER
ALIGNED_SIZE = 112
EMBEDDING_DIM = 512


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Unit-normalise rows; a zero row stays zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class FacePipeline:
    """SCRFD detection + 5-point alignment + ArcFace embedding + a quality score.

    Args:
        detector_path: SCRFD ONNX file (``det_10g.onnx`` or a file of the same signature).
        recognizer_path: ArcFace ONNX file (``w600k_r50.onnx`` or same signature).
        device: "auto", "cuda" or "cpu"; providers are chosen in :mod:`engine.runtime`.
        det_size: detector input size (single scale).
        det_thresh: minimum detector score for a face.
    """

    def __init__(self, detector_path: Path, recognizer_path: Path, device: str = "auto",
                 det_size: int = 640, det_thresh: float = 0.5) -> None:
        providers = runtime.ort_providers(device)
        self.providers = providers
        self.detector_path = Path(detector_path)
        self.recognizer_path = Path(recognizer_path)
        # Each file read once and checked against its pin; the sessions are built from those same bytes.
        det_file = load_path(self.detector_path, DETECTOR_ID)
        rec_file = load_path(self.recognizer_path, RECOGNIZER_ID)
        self.model_files: tuple[FileRef, ...] = (det_file.ref, rec_file.ref)
        ctx = 0 if providers[0] == "CUDAExecutionProvider" else -1
        self.det: Any = self._load(det_file, providers, "detection")
        self.rec: Any = self._load(rec_file, providers, "recognition")
        self.det.prepare(ctx, input_size=(det_size, det_size), det_thresh=det_thresh)
        self.rec.prepare(ctx)
        spec = models.get_spec(RECOGNIZER_ID)
        # insightface guesses mean/std from node names; the manifest records the truth.
        if spec.mean and spec.std:
            self.rec.input_mean, self.rec.input_std = spec.mean[0], spec.std[0]

    @staticmethod
    def _load(file: LoadedFile, providers: list[str], task: str) -> Any:
        """insightface's detector or recognizer around a session built from the checked bytes.

        Routed as insightface's ModelRouter does, but never given a path: the detector is session-only
        (insightface then runs every input size on this session instead of reopening the file), and the
        recognizer reads its node names from the same bytes.
        """
        from insightface.model_zoo import model_zoo

        name = file.path.name
        try:
            session = model_zoo.PickableInferenceSession(file.data, providers=providers)
            inputs, outputs = session.get_inputs(), session.get_outputs()
            shape = list(inputs[0].shape)
            model: Any = None
            if task == "detection" and len(outputs) >= 5:
                model = model_zoo.SCRFD(model_file=None, session=session)
            elif (task == "recognition" and len(outputs) == 1 and len(inputs) == 1 and len(shape) == 4
                  and isinstance(shape[2], int) and shape[2] == shape[3] and shape[2] >= 112
                  and shape[2] % 16 == 0 and shape[2] != 192):
                model = model_zoo.ArcFaceONNX(model_file=io.BytesIO(file.data), session=session)
        except Exception as exc:  # onnxruntime raises its own types for corrupt files
            raise ModelInvalid(f"{name} could not be loaded as an ONNX model: {exc}",
                               hint="Re-import the model; the file may be damaged.") from exc
        if model is None or getattr(model, "taskname", None) != task:
            expected = ("an SCRFD detector (5 or more outputs)" if task == "detection"
                        else "an ArcFace recognizer (N x 3 x 112 x 112 -> N x 512)")
            raise ModelInvalid(f"{file.path} is not {expected}.", hint="Import the right file in Settings > Models.")
        return model

    @classmethod
    def from_models(cls, device: str = "auto", det_size: int = 640, det_thresh: float = 0.5) -> FacePipeline:
        """Load the installed detector and recognizer; see :func:`load_pipeline`."""
        return load_pipeline(device, det_size=det_size, det_thresh=det_thresh)

    @property
    def recognizer_sha256(self) -> str:
        """SHA-256 of the ArcFace file this pipeline runs (checked when it was loaded)."""
        return self.model_files[1].sha256

    def model_refs(self) -> list[dict[str, Any]]:
        """The detector and recognizer files as a run manifest records them (id, file, sha256, trust)."""
        return [ref.to_dict() for ref in self.model_files]

    # -- steps -------------------------------------------------------------------------------
    def detect(self, bgr: np.ndarray) -> list[FaceBox]:
        """All faces in the image, largest first."""
        bboxes, kpss = self.det.detect(bgr, max_num=0)
        boxes = []
        for i in range(bboxes.shape[0]):
            x1, y1, x2, y2, score = (float(v) for v in bboxes[i])
            kps = np.asarray(kpss[i], dtype=np.float32) if kpss is not None else _box_kps(x1, y1, x2, y2)
            boxes.append(FaceBox((x1, y1, x2, y2), kps, score))
        boxes.sort(key=lambda b: b.area, reverse=True)
        return boxes

    @staticmethod
    def align(bgr: np.ndarray, box: FaceBox) -> np.ndarray:
        """Warp the face to the 112x112 ArcFace template (similarity transform on 5 landmarks)."""
        from insightface.utils import face_align

        with warnings.catch_warnings():  # insightface calls a deprecated scikit-image API
            warnings.simplefilter("ignore", FutureWarning)
            return face_align.norm_crop(bgr, landmark=box.kps, image_size=ALIGNED_SIZE)

    def embed(self, aligned: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Unit ArcFace embeddings (N x 512, float32) of aligned 112x112 BGR crops, in batches."""
        if not aligned:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        out = []
        for start in range(0, len(aligned), batch_size):
            feats = self.rec.get_feat(list(aligned[start:start + batch_size]))
            out.append(np.asarray(feats, dtype=np.float32).reshape(-1, EMBEDDING_DIM))
        return l2_normalize(np.concatenate(out))

    # -- whole pipeline ----------------------------------------------------------------------
    def analyze(self, bgr: np.ndarray) -> list[DetectedFace]:
        """Every face of a photo, embedded; the largest is marked primary. Empty list if none."""
        boxes = self.detect(bgr)
        if not boxes:
            return []
        crops = [self.align(bgr, b) for b in boxes]
        embs = self.embed(crops)
        faces = []
        for i, (box, crop) in enumerate(zip(boxes, crops, strict=True)):
            blur = blur_score(crop)
            faces.append(DetectedFace(box=box, aligned=crop, embedding=embs[i],
                                      quality=face_quality(box, blur), blur=blur, primary=(i == 0)))
        return faces

    def embed_primary(self, bgr: np.ndarray) -> DetectedFace:
        """The primary (largest) face of a probe photo, or :class:`NoFaceFound`."""
        faces = self.analyze(bgr)
        if not faces:
            raise NoFaceFound("No face was found in the probe image.",
                              hint="Use a photo where the face is visible and at least ~40 pixels wide.")
        return faces[0]

    def embed_unaligned(self, bgr: np.ndarray) -> tuple[np.ndarray, bool]:
        """Embed a face image, aligning on detected landmarks when possible, else a centred crop.

        Drawn sketches often defeat a photo detector; the centred square crop keeps them usable
        (the ArcFace-on-sketch baseline). Returns (unit embedding, aligned_by_landmarks).
        """
        boxes = self.detect(bgr)
        if boxes:
            return self.embed([self.align(bgr, boxes[0])])[0], True
        return self.embed([centre_crop(bgr, ALIGNED_SIZE)])[0], False


def load_pipeline(device: str | None = None, *, settings: Settings | None = None, det_size: int | None = None,
                  det_thresh: float = 0.5) -> FacePipeline:
    """The one factory of the face pipeline from the installed models, each file checked against its pin.

    Args:
        device: "auto", "cuda" or "cpu"; None for the settings' device.
        settings: where the defaults come from (loaded when None).
        det_size: detector input size; None for the settings' value.
        det_thresh: minimum detector score for a face.
    """
    if device is None or det_size is None:
        settings = settings or settings_mod.load()
        device = device or settings.device
        det_size = det_size or settings.det_size
    locator = ModelLocator()
    for model_id, purpose in ((DETECTOR_ID, "face detection"), (RECOGNIZER_ID, "face recognition")):
        if locator.missing(model_id):
            locator.require(model_id, purpose)  # ModelMissing: which model, where, how to get it
    # FacePipeline reads each file once and checks those bytes against the pin (ModelTampered names the fix).
    return FacePipeline(locator.locate(DETECTOR_ID), locator.locate(RECOGNIZER_ID), device=device,
                        det_size=det_size, det_thresh=det_thresh)


def centre_crop(bgr: np.ndarray, size: int) -> np.ndarray:
    """Square centre crop resized to ``size`` (fallback when no landmarks are found)."""
    h, w = bgr.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = bgr[y0:y0 + side, x0:x0 + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def _box_kps(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    """Template landmarks placed in a box, for detectors without a keypoint head."""
    from insightface.utils.face_align import arcface_dst

    w, h = x2 - x1, y2 - y1
    return (arcface_dst / 112.0 * np.array([w, h], dtype=np.float32) + np.array([x1, y1], dtype=np.float32)).astype(
        np.float32)
