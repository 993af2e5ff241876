"""IP-Adapter FaceID pipelines on SD 1.5 through diffusers' native support, with their checks.

Why the checks: the FaceID checkpoints carry a LoRA for the UNet beside the adapter weights. Without
``peft`` diffusers only logs "PEFT backend is required" and drops it, and when switching FaceID ->
FaceID Plus it keeps the first file's LoRA (it skips adapter names it already has). Both give faces
that look plausible but follow the identity worse, silently. So ``peft`` is required up front, every
LoRA layer is compared with the file's weights after loading, and switching deletes the old LoRA.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from engine.errors import InvalidRequest, ModelInvalid
from engine.generate import device as dev
from engine.generate.model_set import (
    BASE,
    CONTROLNET,
    FACEID,
    FACEID_PLUS,
    IMAGE_ENCODER,
    VAE,
    ModelLocator,
    load_weights,
    loading_checked,
)
from engine.generate.types import GenerationFailed, Mode

log = logging.getLogger(__name__)

LORA_PREFIX = "faceid_"
_PROJECTIONS = (("to_q", "to_q"), ("to_k", "to_k"), ("to_v", "to_v"), ("to_out", "to_out.0"))


def require_peft() -> None:
    """Fail loudly where the FaceID LoRA could not be applied (no ``peft``, or diffusers without it)."""
    import diffusers.utils

    if importlib.util.find_spec("peft") is None or not getattr(diffusers.utils, "USE_PEFT_BACKEND", False):
        raise GenerationFailed(
            "IP-Adapter FaceID needs the 'peft' package: without it the FaceID LoRA would be silently "
            "dropped and faces would follow the sketch's identity less.",
            hint="Install it into the app's environment (pip install peft) and restart.")


def read_adapter(locator: ModelLocator, model_id: str, purpose: str = "") -> tuple[dict[str, dict[str, Any]], str]:
    """A FaceID checkpoint (``.bin`` or ``.safetensors``) as {"image_proj": ..., "ip_adapter": ...}, and its SHA-256.

    Loaded through :func:`load_weights`: the file is read once and those bytes are checked against the
    pin and loaded, so a checkpoint swapped after the check is never the one applied to the UNet.
    """
    flat, sha256 = load_weights(locator, model_id, purpose=purpose)
    name = locator.locate(model_id).name
    state: dict[str, Any]
    if name.endswith(".safetensors"):  # flat keys "image_proj.…" / "ip_adapter.…", as h94 publishes them
        state = {"image_proj": {}, "ip_adapter": {}}
        for key, tensor in flat.items():
            part, _, rest = key.partition(".")
            if part in state:
                state[part][rest] = tensor
    else:
        state = flat
    if not {"image_proj", "ip_adapter"} <= set(state) or not all(
            isinstance(state[k], dict) for k in ("image_proj", "ip_adapter")):
        raise ModelInvalid(f"{name} is not an IP-Adapter checkpoint (no image_proj / ip_adapter weights).",
                           hint="Import the FaceID files from h94/IP-Adapter-FaceID.")
    return state, sha256


def lora_layer_count(unet: Any, adapter: str) -> int:
    """How many UNet linear layers carry the named LoRA adapter."""
    return sum(1 for _, m in unet.named_modules() if adapter in (getattr(m, "lora_B", None) or {}))


def verify_lora(unet: Any, state: dict[str, dict[str, Any]], adapter: str) -> int:
    """Check that every LoRA weight of the checkpoint is active in the UNet; returns the layer count.

    Raises :class:`GenerationFailed` when a layer is missing, holds other weights, or is scaled away.
    """
    import torch

    ip = state["ip_adapter"]
    checked, problems = 0, []
    for key_id, name in enumerate(unet.attn_processors):
        base = name.rsplit(".processor", 1)[0]
        for proj, sub in _PROJECTIONS:
            key = f"{key_id}.{proj}_lora.up.weight"
            if key not in ip:
                continue
            module = unet.get_submodule(f"{base}.{sub}")
            lora_b = getattr(module, "lora_B", None)
            if lora_b is None or adapter not in lora_b:
                problems.append(f"{base}.{sub}: no LoRA")
                continue
            weight = lora_b[adapter].weight.detach().float().cpu()
            if not torch.allclose(weight, ip[key].float(), rtol=1e-2, atol=1e-3):
                problems.append(f"{base}.{sub}: weights differ from the file")
            if abs(float(module.scaling.get(adapter, 0.0)) - 1.0) > 1e-6:
                problems.append(f"{base}.{sub}: LoRA scale {module.scaling.get(adapter)}")
            checked += 1
    active = set(unet.active_adapters()) if checked else set()
    if checked and adapter not in active:
        problems.append(f"adapter {adapter} not active (active: {sorted(active)})")
    if problems:
        raise GenerationFailed(
            f"The FaceID LoRA was not applied correctly ({len(problems)} problems, e.g. {problems[0]}).",
            hint="Check that 'peft' is installed and the FaceID file is the published one; re-import it.")
    return checked


def uses_guidance(pipe: Any, guidance_scale: float) -> bool:
    """Whether diffusers will run classifier-free guidance for this scale (its own rule)."""
    return guidance_scale > 1 and getattr(pipe.unet.config, "time_cond_proj_dim", None) is None


class FaceIDPipelines:
    """Loads SD 1.5 + VAE once and switches between FaceID, FaceID Plus v2 and ControlNet structure mode.

    Args:
        locator: where the models are.
        rt: device, dtype and memory options.
    """

    def __init__(self, locator: ModelLocator, rt: dev.ResolvedRuntime) -> None:
        self.locator = locator
        self.rt = rt
        self._base: Any = None
        self._control: Any = None
        self._controlnet: Any = None
        self._image_encoder: Any = None
        self._placed: Any = None
        self.adapter: Mode | None = None
        self.lora_layers = 0

    # ------------------------------------------------------------------------------------ loading
    def base(self) -> Any:
        """The SD 1.5 pipeline with the ft-MSE VAE and a DDIM scheduler (loaded on first use)."""
        if self._base is None:
            from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline

            base_dir = self.locator.require(BASE, "reconstruction")
            dtype = self.rt.torch_dtype
            if self.locator.available(VAE):
                vae_dir = self.locator.require(VAE, "reconstruction")  # each file checked against its pin
            elif (base_dir / "vae" / "config.json").is_file():
                log.warning("sd15.vae_ft_mse not installed; using the base model's own VAE")
                vae_dir = base_dir / "vae"
            else:
                vae_dir = self.locator.require(VAE, "reconstruction")  # raises ModelMissing
            # Loaded by path: any base or VAE file replaced during the load refuses the pipeline.
            watched = (BASE, VAE) if vae_dir != base_dir / "vae" else (BASE,)
            with loading_checked(self.locator, *watched), dev.quiet_loading():
                vae = AutoencoderKL.from_pretrained(vae_dir, **dev.dtype_kwargs(dtype))
                pipe = StableDiffusionPipeline.from_pretrained(
                    base_dir, vae=vae, safety_checker=None, feature_extractor=None, image_encoder=None,
                    requires_safety_checker=False, local_files_only=True, **dev.dtype_kwargs(dtype))
            # The IP-Adapter FaceID reference setup: DDIM, scaled-linear betas, no sample clipping.
            pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, clip_sample=False,
                                                       set_alpha_to_one=False, steps_offset=1)
            pipe.set_progress_bar_config(disable=True)
            self._base = pipe
        return self._base

    def _encoder(self) -> Any:
        if self._image_encoder is None:
            from transformers import CLIPVisionModelWithProjection

            folder = self.locator.require(IMAGE_ENCODER, "FaceID Plus (reconstruction from a face image)")
            with loading_checked(self.locator, IMAGE_ENCODER), dev.quiet_loading():
                encoder = CLIPVisionModelWithProjection.from_pretrained(
                    folder, **dev.transformers_dtype_kwargs(self.rt.torch_dtype))
            self._image_encoder = encoder  # kept only once the load is known to have read the pinned files
        return self._image_encoder

    def use_adapter(self, mode: Mode) -> None:
        """Load the FaceID (``faceid``) or FaceID Plus v2 (``faceid_plusv2``) adapter and its LoRA."""
        if self.adapter == mode:
            return
        from transformers import CLIPImageProcessor

        require_peft()
        pipe = self.base()
        model_id, purpose = (FACEID, "reconstruction") if mode == "faceid" else (FACEID_PLUS, "FaceID Plus")
        if mode == "faceid_plusv2":
            encoder = self._encoder()  # fail on a missing encoder before unloading anything
        state, _ = read_adapter(self.locator, model_id, purpose)
        path = self.locator.locate(model_id)
        self._unload()
        if mode != "faceid_plusv2":
            self._image_encoder = None  # ViT-H (~1.3 GB fp16): not kept once its mode is left
        if mode == "faceid_plusv2":
            size = int(encoder.config.image_size)
            pipe.register_modules(image_encoder=encoder,
                                  feature_extractor=CLIPImageProcessor(size=size, crop_size=size))
        with dev.quiet_loading():
            pipe.load_ip_adapter(state, subfolder="", weight_name=path.name, image_encoder_folder=None,
                                 local_files_only=True)
        self.lora_layers = verify_lora(pipe.unet, state, f"{LORA_PREFIX}0")
        self.adapter = mode
        self._placed = None
        log.info("loaded %s (%d LoRA layers verified)", path.name, self.lora_layers)

    def _unload(self) -> None:
        pipe = self._base
        if self.adapter is None or pipe is None:
            return
        pipe.unload_ip_adapter()  # leaves the LoRA in place: delete it, or the next file's LoRA is skipped
        names = [n for n in getattr(pipe.unet, "peft_config", {}) if n.startswith(LORA_PREFIX)]
        if names:
            pipe.delete_adapters(names)
        pipe.register_modules(image_encoder=None, feature_extractor=None)
        self.adapter = None
        self._control = None

    def pipeline(self, mode: Mode, structure: bool) -> Any:
        """The pipeline to call for a request: base SD, or a ControlNet pipeline sharing its modules."""
        self.use_adapter(mode)
        pipe = self.base()
        if not structure and self._controlnet is not None:
            self._control = self._controlnet = None  # ControlNet (~0.7 GB fp16): freed when structure is off
            if self._placed is not pipe:
                self._placed = None
        if structure:
            if self._control is None:  # rebuilt after an adapter switch: it must see the new image encoder
                from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

                if self._controlnet is None:
                    folder = self.locator.require(CONTROLNET, "structure-following reconstruction")
                    with loading_checked(self.locator, CONTROLNET), dev.quiet_loading():
                        controlnet = ControlNetModel.from_pretrained(folder, **dev.dtype_kwargs(self.rt.torch_dtype))
                    self._controlnet = controlnet
                parts = {k: v for k, v in pipe.components.items() if k != "safety_checker"}
                self._control = StableDiffusionControlNetPipeline(
                    **parts, controlnet=self._controlnet, safety_checker=None, requires_safety_checker=False)
                self._control.set_progress_bar_config(disable=True)
            pipe = self._control
        if self._placed is not pipe:
            dev.place(pipe, self.rt)
            dev.maybe_compile(pipe.unet, self.rt)
            self._placed = pipe
        return pipe

    # ------------------------------------------------------------------------------------ inputs
    def id_embeds(self, pipe: Any, embedding: Any, guidance: bool) -> Any:
        """The FaceID conditioning for one prompt: [negative (zeros), positive] with guidance, else [positive].

        Why both forms: diffusers splits the embeddings into negative/positive halves only when it runs
        classifier-free guidance; given both halves without guidance, the zero tokens would be mixed
        into the image's conditioning. diffusers repeats each half for ``num_images_per_prompt``.
        """
        import numpy as np
        import torch

        vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if vec.shape != (512,) or not np.isfinite(vec).all():
            raise InvalidRequest(f"The FaceID embedding must be 512 finite numbers, got shape {vec.shape}.")
        ref = torch.from_numpy(vec).reshape(1, 1, 1, 512)
        out = torch.cat([torch.zeros_like(ref), ref]) if guidance else ref
        return out.to(device=pipe._execution_device, dtype=pipe.unet.dtype)

    def set_face_structure(self, pipe: Any, face: Any, face_strength: float, guidance: bool,
                           num_images: int = 1) -> None:
        """FaceID Plus v2: CLIP hidden states of the aligned face and the v2 shortcut at ``face_strength``.

        The projection layer reads ``clip_embeds`` as set here, not through diffusers' batching, so they
        are built for the call's batch: ``num_images`` rows, preceded by as many negatives with guidance.
        """
        import torch

        with torch.no_grad():
            clip = pipe.prepare_ip_adapter_image_embeds([face], None, pipe._execution_device, num_images,
                                                        guidance)[0]
        layer = pipe.unet.encoder_hid_proj.image_projection_layers[0]
        layer.clip_embeds = clip.to(dtype=pipe.unet.dtype)
        layer.shortcut = True
        layer.shortcut_scale = float(face_strength)

    def config_paths(self, structure: bool) -> dict[str, Path]:
        """Config files of the networks that run per step / once per image (for the CPU estimate)."""
        base = self.locator.require(BASE, "reconstruction")
        vae = self.locator.folder(VAE) if self.locator.available(VAE) else base / "vae"
        paths = {"unet": base / "unet" / "config.json", "vae": vae / "config.json"}
        if structure:
            paths["controlnet"] = self.locator.require(CONTROLNET, "structure-following reconstruction") / "config.json"
        return paths
