"""Disguise and appearance variations of a face, by instruction editing, one edit at a time.

Edits are chosen from the sketch's attributes (add glasses only where there are none, shave only a
beard that is there...). They run in turn, not in parallel: one GPU, predictable memory, and a
failing edit (a remote error, out of GPU memory) is recorded for that edit while the others still
run. Cancellation stops the whole run. The local backend is InstructPix2Pix; the Replicate backend
(:mod:`engine.generate.replicate_backend`) plugs in through the same :class:`EditBackend` protocol.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

from engine.errors import Cancelled, EngineError, InvalidRequest
from engine.generate import device as dev
from engine.generate import identity as ident
from engine.generate import memory
from engine.generate.attributes import SketchAttributes, flags
from engine.generate.imaging import array_sha256, to_bgr, to_pil_rgb
from engine.generate.model_set import EDITOR, ModelLocator, loading_checked
from engine.generate.provenance import add_mark, build_record
from engine.generate.reconstruct import out_of_memory
from engine.generate.safety import OFF_RECORD, SafetyChecker
from engine.generate.steps import StepController, run_pipeline
from engine.generate.types import EditSpec, ImageInput, RuntimeOptions, VariationReport, VariationResult
from engine.progress import CancelToken, ProgressCallback, ProgressEvent, check

log = logging.getLogger(__name__)

EDITS: dict[str, EditSpec] = {s.name: s for s in (
    EditSpec("add_glasses", "make the person wear glasses", "Add glasses"),
    EditSpec("remove_glasses", "remove the glasses from the face", "Remove glasses"),
    EditSpec("add_beard", "give the man a full beard", "Add beard"),
    EditSpec("shave", "remove the beard and moustache, clean-shaven face", "Shave"),
    EditSpec("bald", "make the person completely bald", "Bald"),
    EditSpec("add_hair", "give the person a full head of short hair", "Add hair"),
    EditSpec("incognito", "put a dark hoodie with the hood up and dark sunglasses on the person", "Incognito"),
    EditSpec("older", "make the person look twenty years older", "Older"),
)}


def edits_for(attrs: SketchAttributes | Mapping[str, bool] | None,
              include: Sequence[str] | None = None) -> list[EditSpec]:
    """The context-aware edit list: each edit changes what the sketch shows, never repeats it.

    Args:
        attrs: the sketch's attributes (or the seed's four flags); None assumes none of them.
        include: restrict to these edit names (library names; order kept), e.g. ("incognito", "older").
    """
    f = flags(attrs)
    names = ["remove_glasses" if f["has_glasses"] else "add_glasses"]
    if f["has_facial_hair"]:
        names.append("shave")
    elif f["is_male"]:
        names.append("add_beard")
    names += ["add_hair" if f["is_bald"] else "bald", "incognito", "older"]
    if include is not None:
        unknown = [n for n in include if n not in EDITS]
        if unknown:
            raise InvalidRequest(f"Unknown edits: {', '.join(unknown)}. Known: {', '.join(EDITS)}.")
        names = list(include)
    return [EDITS[n] for n in names]


class EditBackend(Protocol):
    """Something that applies one instruction edit to an image (local pipeline or remote service)."""

    name: str
    remote: bool

    def begin_batch(self, count: int) -> None:
        """Called once before ``count`` edits: refuse early (CPU only, switched off) or prepare."""

    def edit(self, image: Image.Image, spec: EditSpec, *, seed: int, progress: ProgressCallback | None,
             cancel: CancelToken | None) -> Image.Image:
        """The edited image; raises on failure (only that edit fails) or :class:`Cancelled`."""

    def end_batch(self) -> None:
        """Called after the edits, also on failure or cancel (e.g. delete uploaded files)."""

    def provenance(self) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        """(parameters, model digests) to record for outputs of this backend."""


@dataclass(frozen=True)
class EditOptions:
    """InstructPix2Pix sampling: steps, text and image guidance, working size (long side, multiple of 8)."""

    steps: int = 20
    guidance_scale: float = 7.5
    image_guidance_scale: float = 1.5
    size: int = 512


class LocalEditor:
    """InstructPix2Pix on this machine (loaded on first edit, kept for the next).

    Args:
        models: where the models are.
        runtime: device, precision and memory options (CPU refused unless ``allow_cpu``).
        options: sampling options.
    """

    name = "instruct_pix2pix"
    remote = False

    def __init__(self, *, models: ModelLocator | None = None, runtime: RuntimeOptions | None = None,
                 options: EditOptions | None = None) -> None:
        self.locator = models or ModelLocator()
        self.rt = dev.resolve(runtime or RuntimeOptions())
        self.options = options or EditOptions()
        self._pipe: Any = None
        self._digests: dict[str, str] | None = None
        resident = self.rt.plan.placement == "resident"
        self.safety = (SafetyChecker(self.locator, "cuda" if resident else "cpu", self.rt.half and resident)
                       if self.rt.options.safety_checker else None)
        self.last_safety: dict[str, Any] = dict(OFF_RECORD)

    def estimate_seconds(self, count: int) -> float:
        """CPU time for ``count`` edits (FLOP-counted from the configs; batch 3 = text, image, none)."""
        folder = self.locator.require(EDITOR, "variations")
        s = self.options.size
        step = dev.module_flops("unet", folder / "unet" / "config.json", s, s, 3)
        decode = dev.module_flops("vae", folder / "vae" / "config.json", s, s, 1)
        return dev.estimate_cpu_seconds(step, self.options.steps, count, decode * 2)  # + the image encode

    def begin_batch(self, count: int) -> None:
        if self.rt.device == "cpu" and not self.rt.options.allow_cpu:
            dev.refuse_on_cpu(self.rt, self.estimate_seconds(count), f"{count} edits")

    def end_batch(self) -> None:
        return None

    def _release(self) -> None:
        """The reconstructor takes the GPU: drop the editor (loaded again on the next edit)."""
        self._pipe = None

    def close(self) -> None:
        """Drop the editor pipeline and give its memory back."""
        self._pipe = None
        memory.RESIDENCY.forget(self)
        memory.free_cuda_cache()

    def _pipeline(self) -> Any:
        memory.RESIDENCY.claim(self, self._release, self.rt.device)
        if self._pipe is None:
            from diffusers import StableDiffusionInstructPix2PixPipeline

            folder = self.locator.require(EDITOR, "variations")
            # Loaded by path: a file replaced during the load refuses the editor (see loading_checked).
            with loading_checked(self.locator, EDITOR), dev.quiet_loading():
                pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
                    folder, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
                    local_files_only=True, **dev.dtype_kwargs(self.rt.torch_dtype))
            pipe.set_progress_bar_config(disable=True)
            dev.place(pipe, self.rt)
            dev.maybe_compile(pipe.unet, self.rt)
            self._pipe = pipe
        return self._pipe

    def _fit(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        scale = self.options.size / max(w, h)
        size = (max(8, round(w * scale / 8) * 8), max(8, round(h * scale / 8) * 8))
        return image.resize(size, Image.Resampling.LANCZOS)

    def edit(self, image: Image.Image, spec: EditSpec, *, seed: int, progress: ProgressCallback | None,
             cancel: CancelToken | None) -> Image.Image:
        import torch

        pipe = self._pipeline()
        o = self.options
        controller = StepController(progress, cancel, total=o.steps, offset=0, label=spec.label, steps=o.steps)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        fitted = self._fit(image)
        memory.set_tiling(pipe, self.rt.plan, *fitted.size)
        try:
            out = run_pipeline(pipe, controller, prompt=spec.instruction, image=fitted,
                               num_inference_steps=o.steps, guidance_scale=o.guidance_scale,
                               image_guidance_scale=o.image_guidance_scale, generator=generator)[0]
        except Exception as exc:
            oom = out_of_memory(exc, self.rt.plan)
            if oom is None:
                raise
            raise oom from exc
        if self.safety is None:
            self.last_safety = dict(OFF_RECORD)
            return out
        out, flagged = self.safety.screen(out)
        self.last_safety = self.safety.record(flagged)
        return out

    def provenance(self) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        if self._digests is None:
            self._digests = self.locator.digests(EDITOR)
        o = self.options
        params = {"steps": o.steps, "guidance_scale": o.guidance_scale,
                  "image_guidance_scale": o.image_guidance_scale, "size": o.size, "device": self.rt.device,
                  "dtype": "float16" if self.rt.half else "float32", "memory_plan": self.rt.plan.placement,
                  "safety_checker": dict(self.last_safety)}
        digests = {EDITOR: self._digests}
        if self.safety is not None:
            digests.update(self.safety.digests())
        return params, digests


def describe_error(exc: BaseException) -> str:
    """A one-line, person-readable reason for a failed edit."""
    return str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"


def _sub_progress(progress: ProgressCallback | None, i: int, n: int, label: str) -> ProgressCallback | None:
    """Map one edit's progress onto the whole run (percent units: edit i covers [100 i, 100 (i+1)])."""
    if progress is None:
        return None

    def report(ev: ProgressEvent) -> None:
        frac = ev.fraction if ev.fraction is not None else 0.0
        progress(ProgressEvent(i * 100 + round(frac * 100), n * 100, f"{label} ({i + 1}/{n}): {ev.message}"))

    return report


def run_variations(image: ImageInput, edits: Sequence[EditSpec], backend: EditBackend, *, seed: int | None = None,
                   progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                   on_result: Callable[[VariationResult], None] | None = None, mark: bool = True,
                   identity: ident.IdentityFn | None = None, reference: np.ndarray | None = None,
                   sources: Mapping[str, str] | None = None) -> VariationReport:
    """Apply each edit to ``image`` in turn; a failing edit is reported and the next one still runs.

    Args:
        image: the face to vary (a candidate's ``unmarked`` image or a matched photo).
        edits: from :func:`edits_for`.
        backend: :class:`LocalEditor` or a remote backend (switched on explicitly).
        seed: first seed (edit i uses ``seed + i``); None draws one and records it.
        on_result: called with each result as soon as it is ready (for a strip that fills up).
        mark: stamp the visible SYNTHETIC band on the outputs.
        identity: optional identity checker; scores are cosines to ``reference`` (default: the
            embedding of ``image`` itself — how much the disguise changes the face for ArcFace).
        sources: identifiers of the inputs to record (e.g. ``{"sketch_sha256": ...}``).

    Raises:
        Cancelled: the token was set (results so far were already passed to ``on_result``).
        GenerationRefused / BackendDisabled: before any edit ran.
    """
    base = to_pil_rgb(image)
    first = seed if seed is not None else secrets.randbelow(2**31)
    srcs = {"base_image_sha256": array_sha256(np.asarray(base)), **dict(sources or {})}
    if identity is not None and reference is None:
        reference = identity(to_bgr(base))
    results: list[VariationResult] = []
    backend.begin_batch(len(edits))
    try:
        for i, spec in enumerate(edits):
            check(cancel)
            started = time.monotonic()
            try:
                out = backend.edit(base, spec, seed=first + i, progress=_sub_progress(progress, i, len(edits), spec.label),
                                   cancel=cancel)
            except Cancelled:
                raise
            except Exception as exc:  # isolate: this edit failed, the others still run
                log.warning("variation %s failed: %s", spec.name, exc, exc_info=not isinstance(exc, EngineError))
                result = VariationResult(spec, None, describe_error(exc), time.monotonic() - started)
            else:
                score, _ = ident.score(identity, to_bgr(out), reference)
                params, digests = backend.provenance()
                safety = params.pop("safety_checker", {"enabled": None, "note": f"{backend.name} does not report one"})
                record = build_record(
                    "variation", seed=first + i, models=digests, sources=srcs,
                    parameters={"edit": spec.name, "instruction": spec.instruction, "backend": backend.name,
                                "remote": backend.remote, **params},
                    extra={"identity_score": score, "marked": mark, "safety_checker": safety})
                result = VariationResult(spec, add_mark(out) if mark else out, None, time.monotonic() - started,
                                         record, score)
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        backend.end_batch()
    return VariationReport(results=tuple(results), backend=backend.name, remote=backend.remote)
