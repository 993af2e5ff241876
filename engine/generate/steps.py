"""Per-step progress and cancellation for diffusers pipelines, and latent decoding.

diffusers calls ``callback_on_step_end`` after every denoising step. :class:`StepController` reports the
step and, when the cancel token is set, sets the pipeline's ``_interrupt`` flag: SD and ControlNet
pipelines then skip the remaining steps without running the UNet again. Pipelines whose loop ignores
the flag (InstructPix2Pix in diffusers 0.42) are stopped by raising :class:`Cancelled` from the
callback. Either way no further UNet step runs after the step during which cancel was asked.

Pipelines are called with ``output_type="latent"`` and decoded here, so a cancelled run does not pay
for a VAE decode either.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from engine.errors import Cancelled
from engine.progress import CancelToken, ProgressCallback, ProgressEvent, check


def honours_interrupt(pipe: Any) -> bool:
    """Whether the pipeline's denoising loop checks ``self.interrupt`` (a property on the class)."""
    return isinstance(getattr(type(pipe), "interrupt", None), property)


class StepController:
    """A ``callback_on_step_end`` that reports progress and stops the pipeline on cancel.

    Args:
        progress: engine progress callback (or None).
        cancel: cancel token (or None).
        total: total steps of the whole job (all images), for the progress fraction.
        offset: steps already done before this pipeline call.
        label: message prefix, e.g. "Candidate 2/4".
        steps: denoising steps of this call.
    """

    def __init__(self, progress: ProgressCallback | None, cancel: CancelToken | None, *, total: int, offset: int,
                 label: str, steps: int) -> None:
        self.progress = progress
        self.cancel = cancel
        self.total = total
        self.offset = offset
        self.label = label
        self.steps = steps
        self.steps_run = 0
        self.interrupted = False

    def __call__(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        self.steps_run = step + 1
        if self.progress is not None:
            self.progress(ProgressEvent(self.offset + step + 1, self.total,
                                        f"{self.label}: step {step + 1}/{self.steps}"))
        if self.cancel is not None and self.cancel.cancelled:
            self.interrupted = True
            pipe._interrupt = True
            if not honours_interrupt(pipe):
                raise Cancelled()
        return callback_kwargs

    def raise_if_interrupted(self) -> None:
        """After the pipeline returned: raise :class:`Cancelled` if it was stopped (or cancel came late)."""
        if self.interrupted:
            raise Cancelled()
        check(self.cancel)


def decode_latents(pipe: Any, latents: Any) -> list[Image.Image]:
    """Decode latents with the pipeline's VAE into RGB PIL images (what ``output_type="pil"`` would do)."""
    import torch

    vae = pipe.vae
    with torch.no_grad():
        latents = latents.to(dtype=vae.dtype)
        images = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    out = pipe.image_processor.postprocess(images, output_type="pil", do_denormalize=[True] * images.shape[0])
    pipe.maybe_free_model_hooks()
    return list(out)


def run_pipeline(pipe: Any, controller: StepController, **kwargs: Any) -> list[Image.Image]:
    """Run a diffusers pipeline call with the controller, stop on cancel, decode the latents."""
    try:
        result = pipe(callback_on_step_end=controller, output_type="latent", **kwargs)
    except Cancelled:
        pipe.maybe_free_model_hooks()
        raise
    controller.raise_if_interrupted()
    return decode_latents(pipe, result.images)
