"""Where the generation models are, their SHA-256s for provenance records, and loading them against their pins.

Models are looked up by manifest id under the models dir (or another root: a test's tiny models, an
unpacked offline bundle), so a missing model is always reported the same way, with what to do.

What the pin check covers for generation models, and what it does not:

- A single weights file the product reads itself (the IP-Adapter FaceID checkpoint) can be loaded from
  the very bytes that were hashed: :func:`load_weights` reads the file once, checks those bytes against
  the pin and loads them from memory (safetensors, or a torch file with ``weights_only=True``), so a
  file swapped after the check is never the one loaded.
- Diffusers, transformers and open_clip folders (the SD 1.5 base, the VAE, ControlNet, the CLIP image
  encoder, InstructPix2Pix, the safety checker, the attribute model) are loaded by ``from_pretrained``
  or open_clip from a path, and those loaders reopen every file by path; several gigabytes cannot
  sensibly be copied into memory first. For them the pin check proves the files at rest are the pinned
  ones, and :func:`loading_checked` closes the window around the load as far as a path allows: it
  records each file's identity (inode, size, mtime, ctime, and the link itself for a symlink) before the
  files are hashed and refuses the loaded model if any identity changed by the end of the load. A swap
  by rename or by re-pointing a link, and any write into a file, change an identity (ctime cannot be
  set back by a user), so they are caught, even when swapped back. Not covered: someone able to set the
  system clock and rewrite a file in place within the load, and files the loaders read that the
  manifest does not list (they are never installed by ``models import``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.errors import ModelInvalid, ModelTampered
from engine.models import get_spec

# One locating mechanism and one digest cache for every model (engine.models.identity / .digests):
# a generation model's files are checked against their pins when the pipeline asks for them.
from engine.models.digests import sha256_cached as file_digest
from engine.models.identity import ModelLocator

__all__ = ["ATTRIBUTES", "BASE", "CONTROLNET", "EDITOR", "FACEID", "FACEID_PLUS", "IMAGE_ENCODER", "SAFETY", "VAE",
           "ModelLocator", "file_digest", "load_weights", "loading_checked"]

BASE = "sd15.realistic_vision_v4"
VAE = "sd15.vae_ft_mse"
FACEID = "ip_adapter.faceid_sd15"
FACEID_PLUS = "ip_adapter.faceid_plusv2_sd15"
IMAGE_ENCODER = "clip.vit_h_14_image_encoder"
CONTROLNET = "controlnet.lineart_sd15"
EDITOR = "instruct_pix2pix"
ATTRIBUTES = "open_clip.vit_b_32_laion2b"
SAFETY = "sd15.safety_checker"


def load_weights(locator: ModelLocator, model_id: str, rel: str | None = None,
                 purpose: str = "") -> tuple[dict[str, Any], str]:
    """A weights file's tensors, loaded from the bytes checked against its pin; (state dict, its SHA-256).

    ``.safetensors`` files load with safetensors; anything else with ``torch.load(weights_only=True)``,
    which refuses pickled objects other than tensors and plain containers. ``purpose`` names what the
    model is needed for in the message about a missing file.
    """
    loaded = locator.load(model_id, rel, purpose)
    name = loaded.path.name
    try:
        if name.endswith(".safetensors"):
            from safetensors.torch import load

            return dict(load(loaded.data)), loaded.ref.sha256
        import torch

        state = torch.load(io.BytesIO(loaded.data), map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, pickle and torch raise unrelated types for damaged files
        raise ModelInvalid(f"{name} could not be read as model weights: {exc}",
                           hint="Re-import the model; the file may be damaged.") from exc
    if not isinstance(state, dict):
        raise ModelInvalid(f"{name} does not hold a dictionary of weights.")
    return state, loaded.ref.sha256


def _identity(path: os.PathLike[str] | str) -> tuple[int, ...]:
    """What changes whenever a file is written, replaced, relinked or re-pointed (stat and lstat)."""
    st, lst = os.stat(path), os.lstat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, lst.st_ino, lst.st_ctime_ns)


@contextmanager
def loading_checked(locator: ModelLocator, *model_ids: str) -> Iterator[dict[str, dict[str, str]]]:
    """Check the models' files against their pins, yield their digests, and refuse a file that changed meanwhile.

    Wrap a path-based load (``from_pretrained``) in it: identities are taken before the files are
    hashed and compared after the block, so a file swapped at any point between the check and the end
    of the load raises :class:`ModelTampered` instead of leaving a model whose weights are not the
    pinned ones (discard what the block loaded).
    """
    before = {}
    for model_id in model_ids:
        folder = locator.folder(model_id)
        for rel in (f.path for f in get_spec(model_id).files):
            path = folder / rel
            if path.is_file():
                before[(model_id, rel)] = _identity(path)
    digests = {model_id: locator.digests(model_id) for model_id in model_ids}
    yield digests
    changed = []
    for (model_id, rel), ident in before.items():
        try:
            now = _identity(locator.folder(model_id) / rel)
        except OSError:
            now = ()
        if now != ident:
            changed.append(f"{model_id}/{rel}")
    if changed:
        raise ModelTampered(
            f"{', '.join(changed)} changed while {'it was' if len(changed) == 1 else 'they were'} being loaded: "
            "what was loaded may not be the pinned file, so it is not used.",
            hint="Something is writing to the models folder: check who can write it, then run "
                 "'sketchface models verify'.")

