"""Generation operations: sketch attributes, reconstruction and variations, all in the engine lane.

One lane with searches and imports, so two model sessions never fight over GPU memory. Outputs can
stream: ``on_output`` is called from the engine thread for each finished image (a Qt signal's
``emit`` delivers it to the GUI thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sketchface_desktop.ops.base import Op
from sketchface_desktop.ops.generation import (
    GeneratedOutput,
    GenerateSettings,
    GenerationEngine,
    GenerationInputs,
)

log = logging.getLogger(__name__)
OnOutput = Callable[[GeneratedOutput], None]


def describe(engine: GenerationEngine, inputs: GenerationInputs) -> Op[tuple[Any, str]]:
    """The sketch's attributes and the prompt made of the confident ones."""
    def work(_p: Any, _c: Any) -> tuple[Any, str]:
        from engine.generate.attributes import prompt_from_attributes

        attrs = engine.describe(inputs.sketch_png, inputs.face_box)
        return attrs, prompt_from_attributes(attrs)

    return Op("Reading the sketch's attributes", work, lane="engine")


def reconstruct(engine: GenerationEngine, settings: GenerateSettings, inputs: GenerationInputs, attributes: Any,
                allow_cpu: bool, on_output: OnOutput) -> Op[tuple[list[GeneratedOutput], str]]:
    """Generate candidates (best identity first) and the engine's note about them."""
    def work(progress: Any, cancel: Any) -> tuple[list[GeneratedOutput], str]:
        from engine.generate.attributes import prompt_from_attributes

        chosen = settings if settings.prompt else replace(settings, prompt=prompt_from_attributes(attributes))
        return engine.reconstruct(chosen, inputs, allow_cpu, progress, cancel, on_output)

    n = settings.num_candidates
    return Op(f"Reconstructing {n} candidate{'s' * (n != 1)}", work, lane="engine")


def vary(engine: GenerationEngine, output: GeneratedOutput, attributes: Any, *, remote: bool, cloud_enabled: bool,
         allow_cpu: bool, steps: int, size: int, on_output: OnOutput) -> Op[tuple[list[GeneratedOutput], list[str]]]:
    """Disguise variations on this computer, or on Replicate after the examiner confirmed the upload on screen."""
    def work(progress: Any, cancel: Any) -> tuple[list[GeneratedOutput], list[str]]:
        if remote:
            from engine.generate.replicate_backend import ReplicateBackend

            def confirmed(notice: Any) -> bool:  # the examiner confirmed on screen just before this run
                log.warning("uploading to %s: %s", notice.service, notice.message)
                return True

            backend = ReplicateBackend(enabled=cloud_enabled, confirm_upload=confirmed)
            try:
                return engine.vary(output, attributes, backend, progress, cancel, on_output)
            finally:
                backend.close()
        editor = engine.local_editor(allow_cpu, steps, size)
        return engine.vary(output, attributes, editor, progress, cancel, on_output)

    where = "Replicate (cloud)" if remote else "this computer"
    return Op(f"Varying seed {output.seed} on {where}", work, lane="engine")


def missing_generation_models(structure: bool, plus: bool) -> list[str]:
    """The diffusion models a reconstruction with these choices needs and this workstation lacks."""
    from engine.generate import model_set as ms

    needed = [ms.BASE, ms.FACEID_PLUS, ms.IMAGE_ENCODER] if plus else [ms.BASE, ms.FACEID]
    needed += [ms.CONTROLNET] if structure else []
    locator = ms.ModelLocator()
    return [m for m in needed if not locator.available(m)]


def editor_missing() -> bool:
    """True when the local variation model (InstructPix2Pix) is not installed."""
    from engine.generate import model_set as ms

    return not ms.ModelLocator().available(ms.EDITOR)


def gpu_facts() -> Op[dict[str, Any]]:
    """Free/total VRAM and where ONNX models run, for Settings > Generation (imports torch: engine lane)."""
    def work(_p: Any, _c: Any) -> dict[str, Any]:
        from engine import runtime
        from engine.generate import memory

        vram = memory.read_vram()
        try:
            onnx = runtime.onnx_status()
            onnx_text = onnx.label + (f" ({onnx.reason})" if onnx.reason else "")
        except ImportError as exc:
            onnx_text = f"unavailable ({exc})"
        return {"vram": vram, "onnx": onnx_text}

    return Op("Reading GPU memory", work, lane="engine", visible=False, cancellable=False)
