"""Where the generation models are, and their SHA-256s for provenance records.

Models are looked up by manifest id under the models dir (or another root: a test's tiny models, an
unpacked offline bundle), so a missing model is always reported the same way, with what to do.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from engine import paths
from engine.errors import ModelMissing
from engine.models import get_spec

BASE = "sd15.realistic_vision_v4"
VAE = "sd15.vae_ft_mse"
FACEID = "ip_adapter.faceid_sd15"
FACEID_PLUS = "ip_adapter.faceid_plusv2_sd15"
IMAGE_ENCODER = "clip.vit_h_14_image_encoder"
CONTROLNET = "controlnet.lineart_sd15"
EDITOR = "instruct_pix2pix"
ATTRIBUTES = "open_clip.vit_b_32_laion2b"

_hash_lock = threading.Lock()
_hash_memo: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of a file, cached by (path, size, mtime) so multi-GB weights are hashed once.

    Uses the model store's persistent cache when it is available (shared with ``sketchface models``).
    """
    try:
        from engine.models.digests import sha256_cached
    except ImportError:  # pragma: no cover - the store ships with the engine
        pass
    else:
        return str(sha256_cached(path))
    from engine.fsutil import sha256_file

    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        if key in _hash_memo:
            return _hash_memo[key]
    digest = sha256_file(path)
    with _hash_lock:
        _hash_memo[key] = digest
    return digest


class ModelLocator:
    """Finds installed models by manifest id.

    Args:
        root: folder holding ``<model id>/`` folders; None for the user's models dir (read at call time,
            so a changed ``SKETCHFACE_MODELS_DIR`` is honoured).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else None

    def folder(self, model_id: str) -> Path:
        get_spec(model_id)
        return (self.root if self.root is not None else paths.models_dir()) / model_id

    def missing(self, model_id: str) -> list[str]:
        base = self.folder(model_id)
        return [f.path for f in get_spec(model_id).files if not f.optional and not (base / f.path).is_file()]

    def available(self, model_id: str) -> bool:
        return not self.missing(model_id)

    def require(self, model_id: str, purpose: str = "") -> Path:
        """The model's folder, or :class:`ModelMissing` naming the missing files and how to get them."""
        missing = self.missing(model_id)
        if missing:
            spec = get_spec(model_id)
            need = f" (needed for {purpose})" if purpose else ""
            raise ModelMissing(
                f"{spec.title} is not installed{need}: {', '.join(missing)} missing in {self.folder(model_id)}.",
                hint=(f"Import it with 'sketchface models import PATH', or 'sketchface models download {model_id}' "
                      f"on a machine with internet; in the app: Settings > Models. Licence: {spec.licence}"),
            )
        return self.folder(model_id)

    def file(self, model_id: str, rel: str | None = None) -> Path:
        """A file of an installed model (its primary file by default)."""
        return self.require(model_id) / (rel or get_spec(model_id).primary.path)

    def digests(self, model_id: str) -> dict[str, str]:
        """SHA-256 of every present file of the model, by relative path (for provenance records)."""
        base = self.folder(model_id)
        return {f.path: file_digest(base / f.path) for f in get_spec(model_id).files if (base / f.path).is_file()}
