"""Where the generation models are, and their SHA-256s for provenance records.

Models are looked up by manifest id under the models dir (or another root: a test's tiny models, an
unpacked offline bundle), so a missing model is always reported the same way, with what to do.
"""

from __future__ import annotations

# One locating mechanism and one digest cache for every model (engine.models.identity / .digests):
# a generation model's files are checked against their pins when the pipeline asks for them.
from engine.models.digests import sha256_cached as file_digest
from engine.models.identity import ModelLocator

__all__ = ["ATTRIBUTES", "BASE", "CONTROLNET", "EDITOR", "FACEID", "FACEID_PLUS", "IMAGE_ENCODER", "SAFETY", "VAE",
           "ModelLocator", "file_digest"]

BASE = "sd15.realistic_vision_v4"
VAE = "sd15.vae_ft_mse"
FACEID = "ip_adapter.faceid_sd15"
FACEID_PLUS = "ip_adapter.faceid_plusv2_sd15"
IMAGE_ENCODER = "clip.vit_h_14_image_encoder"
CONTROLNET = "controlnet.lineart_sd15"
EDITOR = "instruct_pix2pix"
ATTRIBUTES = "open_clip.vit_b_32_laion2b"
SAFETY = "sd15.safety_checker"
