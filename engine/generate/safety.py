"""The Stable Diffusion safety checker, as an explicit, recorded choice.

Why: the reference SD 1.5 pipeline screens every output with the CompVis safety checker and blacks
out flagged images. Omitting it silently (and suppressing diffusers' warning about it) would hide a
difference from the reference, so here it is a setting (on by default, Settings > Generation), its
model is a manifest entry like any other, and every output's provenance says whether it ran, with
which model files, and whether it flagged the image.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from PIL import Image

from engine.generate import device as dev
from engine.generate.model_set import SAFETY, ModelLocator, loading_checked

log = logging.getLogger(__name__)

OFF_RECORD: dict[str, Any] = {"enabled": False, "note": "switched off in Settings > Generation"}


class SafetyChecker:
    """Loads the checker on first use; :meth:`screen` returns the image (black when flagged) and the verdict.

    Args:
        locator: where the models are.
        device: "cuda" or "cpu" (the memory plan puts it on the CPU unless everything is resident).
        half: fp16 weights (CUDA only).
    """

    def __init__(self, locator: ModelLocator, device: str = "cpu", half: bool = False) -> None:
        self.locator = locator
        self.device = device
        self.half = half and device == "cuda"
        self._model: Any = None
        self._processor: Any = None
        self._digests: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                import torch
                from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
                from transformers import CLIPImageProcessor


                folder = self.locator.require(SAFETY, "screening generated images (or switch the safety "
                                                      "checker off in Settings > Generation)")
                dtype = torch.float16 if self.half else torch.float32
                # Loaded by path: a file replaced during the load refuses the checker (see loading_checked).
                with loading_checked(self.locator, SAFETY), dev.quiet_loading():
                    model = StableDiffusionSafetyChecker.from_pretrained(
                        folder / "safety_checker", **dev.dtype_kwargs(dtype))
                    processor = CLIPImageProcessor.from_pretrained(folder / "feature_extractor")
                self._processor = processor
                self._model = model.eval().to(self.device)
            return self._model, self._processor

    def digests(self) -> dict[str, dict[str, str]]:
        """{model id: {file: sha256}} of the checker, for provenance."""
        if self._digests is None:
            self._digests = self.locator.digests(SAFETY)
        return {SAFETY: self._digests}

    def screen(self, image: Image.Image) -> tuple[Image.Image, bool]:
        """(image, flagged): a flagged image is replaced by a black one, as the reference pipeline does."""
        import torch

        model, processor = self._load()
        pixels = processor([image], return_tensors="pt").pixel_values.to(self.device, dtype=model.dtype)
        array = np.asarray(image.convert("RGB"), dtype=np.float32)[None] / 255.0
        with torch.no_grad():
            _, flags = model(images=array.copy(), clip_input=pixels)
        flagged = bool(flags[0])
        if flagged:
            log.warning("the safety checker flagged a generated image; it was replaced by a black image")
            return Image.new("RGB", image.size), True
        return image, False

    def record(self, flagged: bool) -> dict[str, Any]:
        """The provenance entry for one screened image."""
        return {"enabled": True, "model": SAFETY, "flagged": flagged,
                "action": "replaced by a black image" if flagged else "none"}

    def close(self) -> None:
        with self._lock:
            self._model = self._processor = None
