"""Reconstruction: photorealistic candidate faces from a sketch's 512-D embedding (IP-Adapter FaceID).

Typical use (the desktop panel runs this on its engine thread)::

    rec = Reconstructor(runtime=RuntimeOptions())
    result = rec.reconstruct(ReconstructionRequest(embedding=vec, prompt=prompt, num_candidates=4),
                             progress=on_progress, cancel=token, on_candidate=show)

Each candidate has its seed, its ArcFace identity score against the sketch embedding (candidates come
back best first) and a provenance record that :meth:`Candidate.save` writes into the PNG.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from engine.errors import InvalidRequest
from engine.generate import device as dev
from engine.generate import identity as ident
from engine.generate import memory
from engine.generate.faceid import FaceIDPipelines, uses_guidance
from engine.generate.imaging import array_sha256, check_size, fit, lineart_control, to_bgr, to_pil_rgb
from engine.generate.model_set import BASE, CONTROLNET, FACEID, FACEID_PLUS, IMAGE_ENCODER, VAE, ModelLocator
from engine.generate.provenance import add_mark, build_record
from engine.generate.safety import OFF_RECORD, SafetyChecker
from engine.generate.steps import StepController, run_pipeline
from engine.generate.types import (
    Candidate,
    GenerationFailed,
    ReconstructionRequest,
    ReconstructionResult,
    RuntimeOptions,
)
from engine.progress import CancelToken, ProgressCallback, ProgressEvent, check

log = logging.getLogger(__name__)

Auto = Literal["auto"]


def _seeds(request: ReconstructionRequest) -> list[int]:
    if request.seeds:
        return [int(s) for s in request.seeds]
    if request.num_candidates < 1:
        raise InvalidRequest("num_candidates must be at least 1.")
    first = request.seed if request.seed is not None else secrets.randbelow(2**31)
    return [int(first) + i for i in range(request.num_candidates)]


def out_of_memory(exc: BaseException, plan: memory.MemoryPlan) -> GenerationFailed | None:
    """A GPU out-of-memory error as a message naming the setting that helps (None for other errors)."""
    import torch

    if not isinstance(exc, torch.cuda.OutOfMemoryError):
        return None
    better = {"resident": "Model CPU offload", "model_offload": "Sequential CPU offload"}.get(plan.placement)
    step = (f"choose '{better}' under {memory.SETTING}" if better
            else f"choose 'Sequential CPU offload' and VAE tiling 'on' under {memory.SETTING}")
    return GenerationFailed(
        f"The GPU ran out of memory while generating (memory plan: {plan.label}).",
        hint=f"In the app, {step} (CLI: --memory-plan / --vae-tiling on), or generate fewer candidates at "
             "a time, reduce the image size, or close other programs using the GPU.")


def unit_embedding(embedding: np.ndarray) -> tuple[np.ndarray, float]:
    """The embedding scaled to unit length, and its original length (FaceID was trained on unit vectors)."""
    vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vec.astype(np.float64)))
    return (vec / norm).astype(np.float32), norm


class Reconstructor:
    """Generates candidate faces; keeps the loaded pipelines between calls (one instance per app).

    Args:
        models: where the models are (default: the user's models dir).
        runtime: device, precision and memory options.
        identity: ``BGR image -> unit embedding | None`` for the identity check; "auto" uses the
            installed ArcFace pipeline (skipped, with a note, when it is not installed); None skips it.
        face_crop: ``(BGR image, size) -> BGR crop`` aligning the FaceID Plus face image; "auto" uses
            the face pipeline when installed, else a centred crop.
    """

    def __init__(self, *, models: ModelLocator | None = None, runtime: RuntimeOptions | None = None,
                 identity: ident.IdentityFn | Auto | None = "auto",
                 face_crop: ident.FaceCropFn | Auto | None = "auto") -> None:
        self.locator = models or ModelLocator()
        self.rt = dev.resolve(runtime or RuntimeOptions())
        self._tools = ident.FaceTools(self.rt.device) if "auto" in (identity, face_crop) else None
        self._identity = identity
        self._face_crop = face_crop
        self._pipes = FaceIDPipelines(self.locator, self.rt)
        self._digests: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        resident = self.rt.plan.placement == "resident"
        self.safety = (SafetyChecker(self.locator, "cuda" if resident else "cpu", self.rt.half and resident)
                       if self.rt.options.safety_checker else None)

    # ------------------------------------------------------------------------------------ helpers
    def _identity_fn(self) -> tuple[ident.IdentityFn | None, str]:
        if self._identity == "auto":
            assert self._tools is not None
            if self._tools.available():
                return self._tools.embed, ""
            return None, self._tools.unavailable
        if self._identity is None:
            return None, "Identity check switched off."
        return self._identity, ""

    def _crop_fn(self) -> ident.FaceCropFn | None:
        if self._face_crop == "auto":
            assert self._tools is not None
            return self._tools.crop if self._tools.available() else None
        return self._face_crop

    def _model_ids(self, request: ReconstructionRequest) -> list[str]:
        ids = [BASE, VAE if self.locator.available(VAE) else BASE]
        ids.append(FACEID_PLUS if request.mode == "faceid_plusv2" else FACEID)
        if request.mode == "faceid_plusv2":
            ids.append(IMAGE_ENCODER)
        if request.structure_image is not None:
            ids.append(CONTROLNET)
        return list(dict.fromkeys(ids))

    def model_digests(self, request: ReconstructionRequest) -> dict[str, dict[str, str]]:
        """SHA-256 of every model file the request uses (hashed once; cached by file identity)."""
        out = {}
        for model_id in self._model_ids(request):
            if model_id not in self._digests:
                self._digests[model_id] = self.locator.digests(model_id)
            out[model_id] = self._digests[model_id]
        return out

    def estimate_seconds(self, request: ReconstructionRequest) -> float:
        """Expected CPU time for the request (used for the CPU refusal; FLOP-counted, no weights loaded)."""
        structure = request.structure_image is not None
        cfg = self._pipes.config_paths(structure)
        batch = 2 if request.guidance_scale > 1 else 1
        w, h = request.width, request.height
        step = dev.module_flops("unet", cfg["unet"], w, h, batch)
        if structure:
            step += dev.module_flops("controlnet", cfg["controlnet"], w, h, batch)
        decode = dev.module_flops("vae", cfg["vae"], w, h, 1)
        return dev.estimate_cpu_seconds(step, request.steps, len(_seeds(request)), decode)

    @staticmethod
    def _validate(request: ReconstructionRequest) -> None:
        check_size(request.width, request.height)
        if request.steps < 1:
            raise InvalidRequest("steps must be at least 1.")
        emb = np.asarray(request.embedding, dtype=np.float32).reshape(-1)
        if emb.shape != (512,) or not np.isfinite(emb).all() or not np.linalg.norm(emb) > 0:
            raise InvalidRequest("The embedding must be a non-zero 512-D vector (the sketch's ArcFace-space embedding).")

    # ------------------------------------------------------------------------------------ main
    def reconstruct(self, request: ReconstructionRequest, *, progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None,
                    on_candidate: Callable[[Candidate], None] | None = None) -> ReconstructionResult:
        """Generate the request's candidates, check their identity, order them, attach provenance.

        Raises:
            GenerationRefused: CPU-only machine and ``allow_cpu`` not set (says the expected time).
            ModelMissing: a model the request needs is not installed.
            GenerationFailed: the FaceID LoRA could not be applied (e.g. ``peft`` missing), or the GPU
                ran out of memory (the message names the setting that helps).
            Cancelled: the token was set; no further UNet step runs after the current one.
        """
        self._validate(request)
        seeds = _seeds(request)
        structure = request.structure_image is not None
        with self._lock:
            if self.rt.device == "cpu" and not self.rt.options.allow_cpu:
                n = len(seeds)
                dev.refuse_on_cpu(self.rt, self.estimate_seconds(request),
                                  f"{n} candidate{'s' * (n != 1)} of {request.steps} steps at "
                                  f"{request.width}x{request.height}")
            start = time.monotonic()
            per_call = max(1, int(self.rt.options.batch_candidates))
            groups = [seeds[i:i + per_call] for i in range(0, len(seeds), per_call)]
            total = len(groups) * request.steps
            if progress is not None:
                progress(ProgressEvent(0, total, "Loading models"))
            check(cancel)
            memory.RESIDENCY.claim(self, self._release, self.rt.device)
            try:
                pipe = self._pipes.pipeline(request.mode, structure)
                if progress is not None:
                    progress(ProgressEvent(0, total, "Checking model files (SHA-256, once per file)"))
                digests = self.model_digests(request)
                if self.safety is not None:
                    digests.update(self.safety.digests())
                check(cancel)
                call, sources, params = self._prepare(pipe, request, structure)
                identity, note = self._identity_fn()
                if self._tools is not None:  # the detector and ArcFace files of the identity check and crop
                    digests.update(self._tools.digests())
                candidates: list[Candidate] = []
                for g, group in enumerate(groups):
                    check(cancel)
                    for cand in self._group(pipe, request, call, g, group, len(seeds), total, progress, cancel,
                                            identity, digests, sources, params):
                        candidates.append(cand)
                        if on_candidate is not None:
                            on_candidate(cand)
            except Exception as exc:
                oom = out_of_memory(exc, self.rt.plan)
                if oom is None:
                    raise
                raise oom from exc
        ordered = ident.order_by_identity(candidates, lambda c: c.identity_score)
        return ReconstructionResult(candidates=tuple(ordered), mode=request.mode, structure=structure,
                                    device=self.rt.device, seconds=time.monotonic() - start, identity_note=note,
                                    control_image=call.get("image"), memory_plan=self.rt.plan.to_dict())

    def _prepare(self, pipe: Any, request: ReconstructionRequest,
                 structure: bool) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
        """Pipeline call arguments shared by all candidates, the input identifiers and the parameters."""
        raw = np.asarray(request.embedding, dtype=np.float32).reshape(-1)
        emb, norm = unit_embedding(raw)
        if abs(norm - 1.0) > 1e-3:
            log.info("identity embedding had length %.4f; normalised to unit length", norm)
        guidance = uses_guidance(pipe, request.guidance_scale)
        sources = {"embedding_sha256": array_sha256(raw), **dict(request.sources)}
        params: dict[str, Any] = {
            "mode": request.mode, "structure": structure, "prompt": request.prompt,
            "negative_prompt": request.negative_prompt, "steps": request.steps,
            "guidance_scale": request.guidance_scale, "classifier_free_guidance": guidance,
            "width": request.width, "height": request.height,
            "likeness_strength": request.likeness_strength, "scheduler": type(pipe.scheduler).__name__,
            "dtype": "float16" if self.rt.half else "float32", "device": self.rt.device,
            "embedding_norm": round(norm, 6), "embedding_normalised": abs(norm - 1.0) > 1e-6,
            "memory_plan": self.rt.plan.placement,
            "vae_tiling": memory.set_tiling(pipe, self.rt.plan, request.width, request.height),
        }
        pipe.set_ip_adapter_scale(request.likeness_strength)
        call: dict[str, Any] = {
            "prompt": request.prompt, "negative_prompt": request.negative_prompt,
            "ip_adapter_image_embeds": [self._pipes.id_embeds(pipe, emb, guidance)],
            "num_inference_steps": request.steps, "guidance_scale": request.guidance_scale,
            "width": request.width, "height": request.height,
        }
        if request.face_image is not None:
            face = to_pil_rgb(request.face_image)
            sources["face_image_sha256"] = array_sha256(np.asarray(face))
            size = int(pipe.image_encoder.config.image_size)
            crop_fn = self._crop_fn()
            crop = to_pil_rgb(crop_fn(to_bgr(face), size)) if crop_fn is not None else fit(face, size, size)
            call["_face"] = (crop, request.face_strength, guidance)
            params["face_strength"] = request.face_strength
            params["face_aligned"] = crop_fn is not None
        if structure:
            assert request.structure_image is not None
            sketch = to_pil_rgb(request.structure_image)
            sources["structure_image_sha256"] = array_sha256(np.asarray(sketch))
            call["image"] = lineart_control(sketch, request.width, request.height)
            sources["control_image_sha256"] = array_sha256(np.asarray(call["image"]))
            call["controlnet_conditioning_scale"] = request.structure_strength
            params["structure_strength"] = request.structure_strength
            params["control_image"] = "lineart (difference-of-Gaussians line extraction)"
        return call, sources, params

    def _group(self, pipe: Any, request: ReconstructionRequest, call: dict[str, Any], g: int, seeds: list[int],
               n_all: int, total: int, progress: ProgressCallback | None, cancel: CancelToken | None,
               identity: ident.IdentityFn | None, digests: dict[str, dict[str, str]], sources: dict[str, str],
               params: dict[str, Any]) -> list[Candidate]:
        """One UNet call generating ``len(seeds)`` candidates (each from its own seed), then their checks."""
        import torch

        n = len(seeds)
        first = g * max(1, int(self.rt.options.batch_candidates))
        label = f"Candidate {first + 1}/{n_all}" if n == 1 else f"Candidates {first + 1}-{first + n}/{n_all}"
        controller = StepController(progress, cancel, total=total, offset=g * request.steps, label=label,
                                    steps=request.steps)
        kwargs = {k: v for k, v in call.items() if not k.startswith("_")}
        if "_face" in call:  # Plus v2: CLIP embeddings built for this call's batch
            crop, strength, guidance = call["_face"]
            self._pipes.set_face_structure(pipe, crop, strength, guidance, n)
        # CPU generators make a seed give the same image on any device, alone or in a batch.
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        images = run_pipeline(pipe, controller, generator=gens[0] if n == 1 else gens, num_images_per_prompt=n,
                              **kwargs)
        return [self._finish(image, request, first + j, seed, identity, digests, sources, params)
                for j, (image, seed) in enumerate(zip(images, seeds, strict=True))]

    def _finish(self, image: Any, request: ReconstructionRequest, i: int, seed: int,
                identity: ident.IdentityFn | None, digests: dict[str, dict[str, str]], sources: dict[str, str],
                params: dict[str, Any]) -> Candidate:
        """Safety screen, identity score, provenance record and visible mark of one generated image."""
        if self.safety is not None:
            image, flagged = self.safety.screen(image)
            safety = self.safety.record(flagged)
        else:
            safety = dict(OFF_RECORD)
        score, emb = ident.score(identity, to_bgr(image), np.asarray(request.embedding, dtype=np.float32))
        record = build_record("reconstruction", parameters=params, seed=seed, models=digests, sources=sources,
                              extra={"identity_score": score, "marked": request.mark, "safety_checker": safety})
        final = add_mark(image) if request.mark else image
        return Candidate(image=final, seed=seed, identity_score=score, embedding=emb, provenance=record, index=i,
                         unmarked=image)

    def _release(self) -> None:
        """Another generation component takes the GPU: drop the pipelines (loaded again on next use)."""
        self._pipes = FaceIDPipelines(self.locator, self.rt)

    def close(self) -> None:
        """Drop the loaded pipelines and give GPU memory back (the next call loads them again)."""
        with self._lock:
            self._pipes = FaceIDPipelines(self.locator, self.rt)
            if self.safety is not None:
                self.safety.close()
            memory.RESIDENCY.forget(self)
            memory.free_cuda_cache()
