"""Requests, options and results of generation, as plain dataclasses (no torch: front-ends import this).

Images going in are ``PIL.Image`` or BGR ``uint8`` arrays (the engine's OpenCV convention); images
coming out are RGB ``PIL.Image`` objects, ready to show, save (with provenance) or use as a probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from engine.errors import EngineError
from engine.generate.provenance import save_png

ImageInput = Image.Image | np.ndarray

DEFAULT_NEGATIVE_PROMPT = (
    "drawing, sketch, painting, cartoon, anime, cgi, 3d render, text, watermark, signature, cropped, "
    "out of frame, blurry, low quality, jpeg artifacts, deformed face, asymmetric eyes, extra limbs, "
    "disfigured, bad anatomy, duplicate, multiple people"
)

Mode = Literal["faceid", "faceid_plusv2"]


class GenerationRefused(EngineError):
    """The machine is too slow for the request (CPU only); ``estimated_seconds`` says how slow.

    Front-ends show the message and may repeat the call with ``RuntimeOptions(allow_cpu=True)``.
    """

    def __init__(self, message: str, *, estimated_seconds: float, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.estimated_seconds = estimated_seconds


class GenerationFailed(EngineError):
    """The generation stack is not usable as installed (e.g. the FaceID LoRA could not be applied)."""


class BackendDisabled(EngineError):
    """A remote backend was asked for without being switched on (no silent network)."""


class RemoteError(EngineError):
    """A remote backend failed: the model reported an error, the service refused, or it timed out."""


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run the diffusion models (Settings > Generation; ``sketchface`` CLI flags).

    Attributes:
        device: "auto", "cuda" or "cpu" (see :mod:`engine.runtime`).
        half_precision: fp16 weights and activations on CUDA (ignored on CPU, where fp16 is slow).
        compile_unet: ``torch.compile`` the UNet (CUDA; the first image pays the compile time).
        memory_plan: "auto" (from free VRAM, see :mod:`engine.generate.memory`), "resident",
            "model_offload" or "sequential_offload".
        cpu_offload: shorthand kept for older callers: True means ``memory_plan="model_offload"``.
        vae_tiling: "auto" (tiles above ~768 px), "on" or "off" (a bool means "on"/"off").
        vram_budget_gb: use at most this much GPU memory (a shared GPU, a per-process cap).
        safety_checker: run the Stable Diffusion safety checker on every output (as the reference
            pipeline does); the choice is recorded in each image's provenance.
        batch_candidates: candidates generated per UNet call (>1 is faster on large GPUs).
        allow_cpu: run even where only a CPU is available (otherwise :class:`GenerationRefused`).
    """

    device: str = "auto"
    half_precision: bool = True
    compile_unet: bool = False
    memory_plan: str = "auto"
    cpu_offload: bool = False
    vae_tiling: str | bool = "auto"
    vram_budget_gb: float | None = None
    safety_checker: bool = True
    batch_candidates: int = 1
    allow_cpu: bool = False

    @property
    def placement(self) -> str:
        """The memory placement asked for ("auto" unless the user chose one)."""
        if self.memory_plan == "auto" and self.cpu_offload:
            return "model_offload"
        return self.memory_plan

    @property
    def tiling(self) -> str:
        """VAE tiling as "auto", "on" or "off"."""
        if isinstance(self.vae_tiling, bool):
            return "on" if self.vae_tiling else "off"
        return self.vae_tiling


@dataclass(frozen=True, eq=False)  # holds arrays/images: compare by identity
class ReconstructionRequest:
    """One reconstruction: N candidates driven by a 512-D ArcFace-space embedding.

    Attributes:
        embedding: the sketch's unit 512-D embedding (sketch encoder or ArcFace baseline).
        prompt: the (editable) text prompt; see :func:`engine.generate.attributes.prompt_from_attributes`.
        negative_prompt: what to steer away from.
        num_candidates: how many images, each from its own seed.
        seed: first seed (candidate i uses ``seed + i``); None draws one at random and records it.
        seeds: explicit seeds (overrides ``seed`` and ``num_candidates``).
        steps, guidance_scale, width, height: diffusion sampling parameters.
        likeness_strength: IP-Adapter scale (how strongly the embedding drives the face).
        face_image: a face (the sketch or a matched photo) -> FaceID Plus v2 with CLIP structure guidance.
        face_strength: Plus v2 shortcut scale (how much the face image's structure counts).
        structure_image: the sketch -> ControlNet lineart keeps the sketch's geometry.
        structure_strength: ControlNet conditioning scale.
        mark: stamp the visible "SYNTHETIC — investigative aid" band on each output.
        sources: identifiers of the inputs (e.g. ``{"sketch_sha256": ...}``) for the provenance record.
    """

    embedding: np.ndarray
    prompt: str
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    num_candidates: int = 4
    seed: int | None = None
    seeds: tuple[int, ...] | None = None
    steps: int = 30
    guidance_scale: float = 7.5
    width: int = 512
    height: int = 512
    likeness_strength: float = 1.1
    face_image: ImageInput | None = None
    face_strength: float = 1.6
    structure_image: ImageInput | None = None
    structure_strength: float = 0.8
    mark: bool = True
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def mode(self) -> Mode:
        return "faceid_plusv2" if self.face_image is not None else "faceid"


@dataclass(frozen=True, eq=False)  # holds arrays/images: compare by identity
class Candidate:
    """One generated face.

    Attributes:
        image: the output (RGB; with the visible mark when the request asked for it).
        seed: the seed that reproduces it with the same request and models.
        identity_score: cosine between the ArcFace embedding of the generated face and the request's
            embedding; None when no face was found or no identity checker is installed.
        embedding: that ArcFace embedding (usable as an extra, synthetic search probe), or None.
        provenance: the record written into the PNG (synthetic flag, parameters, seed, model SHA-256s).
        index: generation order (candidates are returned ordered by identity score).
        unmarked: the same image without the visible band, for further processing (variations, probe
            embedding); never export it without its provenance.
    """

    image: Image.Image
    seed: int
    identity_score: float | None
    embedding: np.ndarray | None
    provenance: dict[str, Any]
    index: int = 0
    unmarked: Image.Image | None = None
    synthetic: bool = True

    def save(self, path: str | Path) -> str:
        """Write the PNG with its provenance metadata (atomically); returns the file's SHA-256."""

        return save_png(self.image, self.provenance, path)


@dataclass(frozen=True, eq=False)  # holds arrays/images: compare by identity
class ReconstructionResult:
    """Candidates ordered by identity score (best first; faces not found last, in seed order).

    ``control_image`` is the structure (lineart) image the ControlNet followed, to show the user;
    ``memory_plan`` is how the models were placed on this machine.
    """

    candidates: tuple[Candidate, ...]
    mode: Mode
    structure: bool
    device: str
    seconds: float
    identity_note: str = ""
    control_image: Image.Image | None = None
    memory_plan: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EditSpec:
    """One appearance edit: a stable name, the instruction given to the editor, a label for people."""

    name: str
    instruction: str
    label: str


@dataclass(frozen=True, eq=False)  # holds arrays/images: compare by identity
class VariationResult:
    """The outcome of one edit: an image, or the error that stopped this edit (others still ran)."""

    spec: EditSpec
    image: Image.Image | None
    error: str | None
    seconds: float
    provenance: dict[str, Any] = field(default_factory=dict)
    identity_score: float | None = None
    synthetic: bool = True

    @property
    def ok(self) -> bool:
        return self.image is not None

    def save(self, path: str | Path) -> str:
        """Write the PNG with its provenance metadata; returns the file's SHA-256."""
        if self.image is None:
            raise EngineError(f"Variation {self.spec.label!r} has no image: {self.error}")

        return save_png(self.image, self.provenance, path)


@dataclass(frozen=True, eq=False)  # holds arrays/images: compare by identity
class VariationReport:
    """All edits of one run, in the order asked; ``backend`` says where they were computed."""

    results: tuple[VariationResult, ...]
    backend: str
    remote: bool

    @property
    def failed(self) -> tuple[VariationResult, ...]:
        return tuple(r for r in self.results if not r.ok)
