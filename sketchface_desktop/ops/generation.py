"""Engine-lane state of the Reconstruct panel: attributes, reconstruction and variations (no Qt here).

Why a separate, Qt-free module: :mod:`sketchface_desktop.ops.generate` runs these methods as
engine-lane operations; they take the engine's progress callback and cancel token straight through,
and keep the loaded diffusion pipelines between runs (a Reconstructor per ``allow_cpu`` choice, so a
CPU-only machine's refusing instance never throws away the pipelines the user chose to run anyway).
Heavy modules (torch, diffusers, open_clip) load here on first use, never when the window opens.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from sketchface_desktop.engine_session import EngineSession

log = logging.getLogger(__name__)
SOURCE_SKETCH = "sketch"  # the face image of a reconstruction: the sketch alone ...
SOURCE_CANDIDATE = "candidate"  # ... or with the selected candidate's photo (FaceID Plus v2)
BACKEND_LOCAL = "local"
BACKEND_REPLICATE = "replicate"


@dataclass(frozen=True, eq=False)  # holds images: compare by identity
class GeneratedOutput:
    """One synthetic image in the strip: a reconstruction candidate or a variation of one.

    Attributes:
        kind: "reconstruction" or "variation".
        image: what is shown and saved (with the visible SYNTHETIC band).
        unmarked: the same image without the band, the input of further variations.
        seed: the seed that reproduces it (None for remote backends).
        identity_score: ArcFace cosine to the sketch (reconstruction) or to the varied face (variation).
        provenance: the record embedded in the PNG (synthetic flag, parameters, seed, model SHA-256s).
        label: what people read ("Candidate · seed 12", "Incognito").
        sketch_png: the exact sheet it was generated from (links it to a sketch version in the case).
    """

    kind: str
    image: Image.Image
    unmarked: Image.Image | None
    seed: int | None
    identity_score: float | None
    provenance: dict[str, Any]
    label: str
    sketch_png: bytes | None = None

    def png(self) -> bytes:
        """The PNG with its provenance embedded (what is stored in a case or used as a probe)."""
        from engine.generate.provenance import png_bytes

        return png_bytes(self.image, self.provenance)

    def case_params(self) -> dict[str, Any]:
        """Generation parameters for ``engine.cases.add_generated_image`` (``models`` = {id: {file: sha}})."""
        rec = self.provenance
        return {"kind": self.kind, "label": self.label, "synthetic": True, "seed": self.seed,
                "identity_score": self.identity_score, "parameters": rec.get("parameters", {}),
                "models": rec.get("models", {}), "sources": rec.get("sources", {}),
                "software": rec.get("software", "")}


@dataclass(frozen=True)
class GenerateSettings:
    """The panel's choices for one reconstruction (read in the GUI thread, used in the engine lane)."""

    prompt: str
    num_candidates: int = 4
    seed: int | None = None
    steps: int = 30
    size: int = 512
    likeness_strength: float = 1.1
    face_strength: float = 1.6
    structure: bool = False


@dataclass(frozen=True)
class GenerationInputs:
    """What the reconstruction starts from: the sheet (always) and optionally a candidate's photo."""

    sketch_png: bytes
    face_box: tuple[float, float, float, float] | None = None
    face_photo: str | None = None
    face_label: str = ""
    extra_sources: dict[str, str] = field(default_factory=dict)


def _decode(png: bytes) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        from engine.errors import BadImage

        raise BadImage("The sketch could not be decoded.")
    return np.asarray(img)


def _face_square(sheet: np.ndarray, face_box: tuple[float, float, float, float] | None, cfg: Any) -> np.ndarray:
    """The engine's crop of the sheet (the square the encoder sees), as a BGR image for the generators."""
    import cv2

    from engine.sketch.preprocess import crop_sketch

    return np.asarray(cv2.cvtColor(crop_sketch(sheet, face_box, cfg), cv2.COLOR_GRAY2BGR))


class GenerationEngine:
    """Generation state kept between jobs; every method runs in the engine lane.

    Args:
        session: the workstation's engine session (settings, face pipeline, sketch embedder).
    """

    def __init__(self, session: EngineSession) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._reconstructors: dict[tuple[Any, bool], Any] = {}
        self._editors: dict[tuple[Any, bool, int, int], Any] = {}
        self._attributes: Any = None
        self.control_image: Any = None  # the structure lines of the last reconstruction (None: structure off)

    # -- shared pieces --------------------------------------------------------------------------
    def _runtime(self, allow_cpu: bool) -> Any:
        """Every Settings > Generation option (memory plan, tiling, fp16, safety checker...), not the device only."""
        from engine.generate.memory import runtime_options

        return runtime_options(self.session.settings, allow_cpu=allow_cpu)

    def _face_tools(self) -> Any:
        """ArcFace identity/crop on the session's face pipeline (no second copy); None when not installed."""
        from engine.errors import ModelMissing
        from engine.generate.identity import FaceTools

        try:
            pipeline = self.session.pipeline()
        except ModelMissing:
            return None
        return FaceTools(self.session.settings.device, pipeline=pipeline)

    def reconstructor(self, allow_cpu: bool) -> Any:
        from engine.generate.reconstruct import Reconstructor

        key = (self._runtime(False), allow_cpu)
        with self._lock:
            for old in [k for k in self._reconstructors if k[0] != key[0]]:  # a generation setting changed
                self._reconstructors.pop(old).close()
            if key not in self._reconstructors:
                tools = self._face_tools()
                ident: dict[str, Any] = ({"identity": tools.embed, "face_crop": tools.crop} if tools is not None
                                         else {"identity": "auto", "face_crop": "auto"})
                self._reconstructors[key] = Reconstructor(runtime=self._runtime(allow_cpu), **ident)
            return self._reconstructors[key]

    def close(self) -> None:
        """Drop the pipelines (device changed, models replaced, window closing)."""
        with self._lock:
            for rec in self._reconstructors.values():
                rec.close()
            self._reconstructors.clear()
            self._editors.clear()
            self._attributes = None

    # -- attributes -----------------------------------------------------------------------------
    def describe(self, sketch_png: bytes, face_box: tuple[float, float, float, float] | None) -> Any:
        """The sketch's attributes (sex, age, hair, facial hair, glasses) with their confidences."""
        from engine.generate.attributes import AttributeModel

        if self._attributes is None:
            self._attributes = AttributeModel.from_models(device=self.session.settings.device)  # placed by the plan
        return self._attributes.predict(_face_square(_decode(sketch_png), face_box, None))

    # -- reconstruction -------------------------------------------------------------------------
    def request(self, settings: GenerateSettings, inputs: GenerationInputs) -> tuple[Any, bool]:
        """The engine request for the panel's settings, and whether the ArcFace baseline embedded the sketch."""
        from engine.faces.decode import load_image
        from engine.fsutil import sha256_file
        from engine.generate.types import ReconstructionRequest
        from engine.sketch.embedder import embed_sketch

        sheet = _decode(inputs.sketch_png)
        embedder = self.session.sketch_embedder()
        vec = np.asarray(embed_sketch(embedder, sheet, inputs.face_box), np.float32).reshape(-1)
        sources = {"sketch_sha256": hashlib.sha256(inputs.sketch_png).hexdigest(), "embedding_from": "sketch",
                   "sketch_embedder": str(embedder.backend),
                   "sketch_embedder_baseline": "true" if embedder.is_baseline else "false", **inputs.extra_sources}
        face = None
        if inputs.face_photo:
            face = load_image(inputs.face_photo)
            sources["face_image_file_sha256"] = sha256_file(inputs.face_photo)
        structure = None
        if settings.structure:
            structure = _face_square(sheet, inputs.face_box, embedder.preprocess_config)
        req = ReconstructionRequest(
            embedding=vec / max(float(np.linalg.norm(vec)), 1e-12), prompt=settings.prompt,
            num_candidates=settings.num_candidates, seed=settings.seed, steps=settings.steps, width=settings.size,
            height=settings.size, likeness_strength=settings.likeness_strength, face_image=face,
            face_strength=settings.face_strength, structure_image=structure, sources=sources)
        return req, bool(embedder.is_baseline)

    def reconstruct(self, settings: GenerateSettings, inputs: GenerationInputs, allow_cpu: bool,
                    progress: Any, cancel: Any,
                    on_output: Callable[[GeneratedOutput], None] | None = None) -> tuple[list[GeneratedOutput], str]:
        """Generate; outputs best identity first, plus the engine's identity note (or the baseline warning)."""
        req, baseline = self.request(settings, inputs)

        def wrap(cand: Any) -> GeneratedOutput:
            return GeneratedOutput("reconstruction", cand.image, cand.unmarked, cand.seed, cand.identity_score,
                                   cand.provenance, f"seed {cand.seed}", inputs.sketch_png)

        result = self.reconstructor(allow_cpu).reconstruct(
            req, progress=progress, cancel=cancel,
            on_candidate=(lambda c: on_output(wrap(c))) if on_output is not None else None)
        self.control_image = result.control_image
        notes = [result.identity_note] if result.identity_note else []
        if baseline:
            notes.append("BASELINE embedding: no trained sketch encoder (weak likeness).")
        return [wrap(c) for c in result.candidates], " ".join(notes)

    # -- variations -----------------------------------------------------------------------------
    def local_editor(self, allow_cpu: bool, steps: int, size: int) -> Any:
        from engine.generate.variations import EditOptions, LocalEditor

        key = (self._runtime(False), allow_cpu, steps, size)
        with self._lock:
            if key not in self._editors:
                self._editors.clear()  # one editor pipeline in memory at a time
                self._editors[key] = LocalEditor(runtime=self._runtime(allow_cpu),
                                                 options=EditOptions(steps=steps, size=size))
            return self._editors[key]

    def vary(self, output: GeneratedOutput, attributes: Any, backend: Any, progress: Any, cancel: Any,
             on_output: Callable[[GeneratedOutput], None] | None = None) -> tuple[list[GeneratedOutput], list[str]]:
        """Context-aware edits of ``output``: the images, and one line per edit that failed (others still ran)."""
        from engine.generate.variations import edits_for, run_variations

        tools = self._face_tools()
        parent_sha = hashlib.sha256(output.png()).hexdigest()

        def wrap(r: Any) -> GeneratedOutput:
            return GeneratedOutput("variation", r.image, None, r.provenance.get("seed"), r.identity_score,
                                   r.provenance, f"{r.spec.label} (of seed {output.seed})", output.sketch_png)

        def each(r: Any) -> None:
            if r.ok and on_output is not None:
                on_output(wrap(r))
            elif not r.ok:
                log.warning("variation %s failed: %s", r.spec.name, r.error)

        report = run_variations(output.unmarked or output.image, edits_for(attributes), backend,
                                progress=progress, cancel=cancel, on_result=each,
                                identity=tools.embed if tools is not None else None,
                                sources={"parent_png_sha256": parent_sha,
                                         **({"sketch_sha256": output.provenance.get("sources", {}).get(
                                             "sketch_sha256", "")} if output.sketch_png else {})})
        return [wrap(r) for r in report.results if r.ok], [f"{r.spec.label}: {r.error}" for r in report.failed]
