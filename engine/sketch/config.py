"""The sketch encoder's self-describing configuration: architecture, preprocessing, provenance.

Why a separate, torch-free module: a checkpoint must carry everything needed to rebuild and feed its
model (architecture, input size, mean/std, embedding size, the ArcFace file it was trained against),
so nothing is guessed at load time, and the app can read it (to show it, or to refuse an incompatible
encoder) without importing torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.arcface import require_same_arcface
from engine.errors import ModelInvalid
from engine.fsutil import atomic_write_text

FORMAT = "sketchface.sketch_encoder"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ONNX_NAME = "model.onnx"
ARCFACE_MODEL_ID = "buffalo_l.w600k_r50"
EMBED_DIM = 512

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class PreprocessConfig:
    """How a sketch image becomes the encoder's input (the one definition, for trainer and app).

    Attributes:
        input_size: side of the square network input in pixels.
        mean, std: per-channel normalisation of [0, 1] pixels (CLIP's by default).
        margin: fraction of the face region's side added on every side before the square crop.
        ink_threshold: gray level (0-255) below which a pixel counts as ink when no box is given.
        ink_quantile: fraction of ink pixels ignored at each end of the ink box (stray marks, specks).
        auto_invert: invert white-on-black images (dark border) so strokes are always dark on light.
    """

    input_size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    margin: float = 0.08
    ink_threshold: int = 200
    ink_quantile: float = 0.002
    auto_invert: bool = True

    def validate(self) -> None:
        if self.input_size < 16:
            raise ModelInvalid(f"Sketch encoder input size {self.input_size} is too small (minimum 16).")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ModelInvalid("Sketch encoder mean/std must be three numbers each, std positive.")
        if not 0.0 <= self.margin < 1.0 or not 0 < self.ink_threshold < 256 or not 0 <= self.ink_quantile < 0.5:
            raise ModelInvalid("Sketch encoder preprocessing values are out of range "
                               f"(margin={self.margin}, ink_threshold={self.ink_threshold}, "
                               f"ink_quantile={self.ink_quantile}).")


@dataclass
class EncoderConfig:
    """Everything a sketch-encoder checkpoint needs besides its weights.

    Attributes:
        architecture: open_clip architecture name (e.g. "ViT-B-16") or a label for a custom config.
        model_cfg: the resolved open_clip config of the image tower: ``{"embed_dim", "quick_gelu",
            "vision_cfg"}``; stored whole so loading never depends on open_clip's registry.
        head_hidden: hidden width of the projection head (0: a single linear layer).
        embed_dim: output size (512: ArcFace space).
        preprocess: input preparation.
        arcface_sha256: SHA-256 of the ArcFace ONNX file whose space the encoder was trained into.
        arcface_model_id: manifest id of that recognizer.
        metrics: evaluation results at export (Recall@1 etc.), for the examiner and the report.
        training: provenance of the training run (config, steps, dataset digest).
        weights: which weights were exported ("ema" teacher or "student").
        pretrained: the starting weights of the image tower: source, manifest id, open_clip tag,
            SHA-256 of the file loaded, activation; a warning when trained from random weights.
    """

    architecture: str = "ViT-B-16"
    model_cfg: dict[str, Any] = field(default_factory=dict)
    head_hidden: int = 1024
    embed_dim: int = EMBED_DIM
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    arcface_sha256: str | None = None
    arcface_model_id: str = ARCFACE_MODEL_ID
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    weights: str = "ema"
    pretrained: dict[str, Any] = field(default_factory=dict)

    # -- validation -------------------------------------------------------------------------
    def vision_image_size(self) -> int:
        """The image size the open_clip tower was built for (square)."""
        size = self.model_cfg.get("vision_cfg", {}).get("image_size", 224)
        if isinstance(size, list | tuple):
            if len(size) != 2 or size[0] != size[1]:
                raise ModelInvalid(f"Sketch encoder image size {size} is not square.")
            size = size[0]
        return int(size)

    def validate(self) -> None:
        """Refuse configs that cannot produce a usable 512-D ArcFace-space embedding."""
        if not isinstance(self.model_cfg.get("vision_cfg"), dict) or "embed_dim" not in self.model_cfg:
            raise ModelInvalid("The sketch encoder config has no open_clip 'model_cfg' (embed_dim, vision_cfg).")
        if self.embed_dim != EMBED_DIM:
            raise ModelInvalid(f"The sketch encoder outputs {self.embed_dim}-D vectors; ArcFace space is "
                               f"{EMBED_DIM}-D.")
        self.preprocess.validate()
        if self.vision_image_size() != self.preprocess.input_size:
            raise ModelInvalid(f"Sketch encoder input size {self.preprocess.input_size} differs from its "
                               f"backbone's image size {self.vision_image_size()}.")
        if self.arcface_sha256 is not None and (len(self.arcface_sha256) != 64
                                                or any(c not in "0123456789abcdef" for c in self.arcface_sha256)):
            raise ModelInvalid(f"The sketch encoder's ArcFace SHA-256 {self.arcface_sha256!r} is malformed.")

    # -- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["preprocess"]["mean"] = list(self.preprocess.mean)
        doc["preprocess"]["std"] = list(self.preprocess.std)
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **doc}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EncoderConfig:
        """Parse a config dict; unknown keys are ignored (newer minor writers), a wrong format refused."""
        if doc.get("format") != FORMAT:
            raise ModelInvalid(f"This is not a SketchFace sketch-encoder config (format {doc.get('format')!r}).")
        if int(doc.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelInvalid(f"The sketch encoder was written by a newer SketchFace (format "
                               f"{doc.get('format_version')}); update the workstation to use it.")
        pre_doc = dict(doc.get("preprocess") or {})
        pre_names = {f.name for f in fields(PreprocessConfig)}
        pre = PreprocessConfig(**{k: v for k, v in pre_doc.items() if k in pre_names})
        pre.mean = tuple(float(v) for v in pre.mean)  # type: ignore[assignment]
        pre.std = tuple(float(v) for v in pre.std)  # type: ignore[assignment]
        names = {f.name for f in fields(cls)} - {"preprocess"}
        cfg = cls(preprocess=pre, **{k: v for k, v in doc.items() if k in names})
        cfg.validate()
        return cfg

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EncoderConfig:
        path = Path(path)
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelInvalid(f"The sketch encoder config {path} is unreadable ({exc}).",
                               hint="Re-export or re-install the encoder.") from exc
        if not isinstance(doc, dict):
            raise ModelInvalid(f"The sketch encoder config {path} is not a JSON object.")
        return cls.from_dict(doc)


def check_arcface_compatible(cfg_sha256: str | None, arcface_sha256: str | None, *, against: str) -> None:
    """Refuse an encoder trained against another ArcFace file than the one its vectors are compared to.

    Why: the encoder regresses sketches onto one specific ArcFace model's embedding space; a gallery
    embedded by a different file (another release, a fine-tune) lives in a different space, and
    cosine scores between the two are meaningless, silently.

    Args:
        cfg_sha256: the ArcFace SHA-256 recorded in the encoder's config.
        arcface_sha256: the ArcFace SHA-256 of the gallery or installed recognizer; None skips the check.
        against: what ``arcface_sha256`` belongs to, for the message ("gallery 'x'", "installed ArcFace").
    """
    if arcface_sha256 is None:
        return
    if cfg_sha256 is None:
        raise ModelInvalid("The sketch encoder does not record which ArcFace model it was trained against, "
                           f"so it cannot be checked against the {against}.",
                           hint="Re-export it with 'python -m trainer export' from its training run.")
    require_same_arcface(cfg_sha256, arcface_sha256, what="sketch encoder's training", against=against,
                         hint="Install the encoder trained for this ArcFace model, or re-train it against this one "
                              "(python -m trainer train).")
