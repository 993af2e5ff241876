"""SketchEncoder: an OpenCLIP image tower plus a projection head into ArcFace's 512-D unit sphere.

The one model definition used by the trainer, the exporter and the app. This module imports torch at
module level on purpose (a module-level ``nn.Module`` subclass needs it); nothing imports it at
start-up: ``engine.sketch`` loads it lazily when a model is first built.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, cast

import torch  # noqa: TID253 - only imported when a model is built (engine.sketch imports it lazily)
import torch.nn.functional as F  # noqa: TID253
from torch import nn  # noqa: TID253

from engine.errors import ConfigError, ModelInvalid
from engine.sketch.config import EMBED_DIM, EncoderConfig

log = logging.getLogger(__name__)


def resolve_model_cfg(architecture: str, model_cfg: dict[str, Any] | str | None = None) -> dict[str, Any]:
    """The open_clip image-tower config for an architecture name, a JSON file or a config dict.

    Only what the image tower needs is kept (``embed_dim``, ``quick_gelu``, ``vision_cfg``), so a
    checkpoint stores the exact tower it was trained with and never depends on open_clip's registry.

    Args:
        architecture: an open_clip model name (``open_clip.list_models()``), e.g. "ViT-B-16".
        model_cfg: a custom open_clip config (dict, or path to a JSON file) that overrides the name;
            its ``vision_cfg`` follows ``open_clip.CLIPVisionCfg`` (width, layers, patch_size, ...).
    """
    doc: Any = model_cfg
    if isinstance(doc, str | Path):
        try:
            doc = json.loads(Path(doc).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Cannot read the open_clip config {model_cfg}: {exc}") from exc
    if doc is None:
        if architecture.startswith(("hf-hub:", "local-dir:")):
            raise ConfigError(f"Architecture {architecture!r}: give open_clip configs as a name, a JSON file "
                              "or a dict (remote configs are not fetched).")
        import open_clip

        doc = open_clip.get_model_config(architecture)
        if doc is None:
            raise ConfigError(f"Unknown open_clip architecture {architecture!r}.",
                              hint="Use a name from open_clip.list_models() or give a custom model_cfg.")
    if not isinstance(doc, dict) or not isinstance(doc.get("vision_cfg"), dict) or "embed_dim" not in doc:
        raise ConfigError("An open_clip config needs 'embed_dim' and a 'vision_cfg' object.")
    return {"embed_dim": int(doc["embed_dim"]), "quick_gelu": bool(doc.get("quick_gelu", False)),
            "vision_cfg": dict(doc["vision_cfg"])}


def _build_visual(model_cfg: dict[str, Any]) -> nn.Module:
    # open_clip's own tower builder (the one CLIP.__init__ uses), so parameter names match
    # ``clip.visual.*`` of open_clip checkpoints exactly; tests pin that equivalence.
    from open_clip.model import _build_vision_tower

    return _build_vision_tower(model_cfg["embed_dim"], model_cfg["vision_cfg"],
                               quick_gelu=model_cfg.get("quick_gelu", False), cast_dtype=None)


class SketchEncoder(nn.Module):
    """Image tower (``visual``) + projection head (``head``); forward returns L2-normalised vectors.

    Args:
        model_cfg: resolved open_clip config (see :func:`resolve_model_cfg`).
        embed_dim: output size (512, ArcFace space).
        head_hidden: hidden width of the two-layer head; 0 for a single linear map.
    """

    def __init__(self, model_cfg: dict[str, Any], embed_dim: int = EMBED_DIM, head_hidden: int = 1024) -> None:
        super().__init__()
        self.model_cfg = model_cfg
        self.visual = _build_visual(model_cfg)
        clip_dim = int(model_cfg["embed_dim"])
        if head_hidden > 0:
            self.head: nn.Module = nn.Sequential(nn.Linear(clip_dim, head_hidden), nn.GELU(),
                                                 nn.Linear(head_hidden, embed_dim))
        else:
            self.head = nn.Linear(clip_dim, embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        feats = self.head(self.visual(pixels))
        return F.normalize(feats.float(), dim=-1)

    # -- structure used by progressive unfreezing ----------------------------------------------
    def blocks(self) -> list[nn.Module]:
        """The backbone's sequential blocks, first to last (transformer blocks, ResNet/timm stages)."""
        v = self.visual
        if hasattr(v, "transformer") and hasattr(v.transformer, "resblocks"):
            return list(cast(nn.ModuleList, v.transformer.resblocks))
        if all(hasattr(v, f"layer{i}") for i in range(1, 5)):
            return [getattr(v, f"layer{i}") for i in range(1, 5)]
        trunk = getattr(v, "trunk", None)
        for name in ("blocks", "stages", "layers"):
            seq = getattr(trunk, name, None)
            if isinstance(seq, nn.Sequential | nn.ModuleList):
                return list(seq)
        raise ConfigError(f"Cannot find the blocks of a {type(v).__name__} backbone for progressive unfreezing.")

    def tail_parameters(self) -> list[nn.Parameter]:
        """Backbone parameters after the last block (final norm, pooling, CLIP projection).

        They are trained with the head from the start: they only re-map the pooled feature, and
        leaving them frozen would pin the head to CLIP's text-aligned projection.
        """
        in_blocks = {id(p) for b in self.blocks() for p in b.parameters()}
        names = ("ln_post", "proj", "attn_pool", "attn_pool_contrastive", "attnpool", "head")
        params: list[nn.Parameter] = []
        for name in names:
            obj = getattr(self.visual, name, None)
            if isinstance(obj, nn.Parameter):
                params.append(obj)
            elif isinstance(obj, nn.Module):
                params.extend(obj.parameters())
        trunk = getattr(self.visual, "trunk", None)
        if trunk is not None:
            for name in ("norm", "fc_norm", "head"):
                mod = getattr(trunk, name, None)
                if isinstance(mod, nn.Module):
                    params.extend(mod.parameters())
        unique: dict[int, nn.Parameter] = {}
        for p in params:
            if id(p) not in in_blocks:
                unique.setdefault(id(p), p)
        return list(unique.values())

    def head_parameters(self, include_tail: bool = True) -> list[nn.Parameter]:
        """Parameters trained from step 0: the projection head (and the backbone tail)."""
        params = list(self.head.parameters())
        return params + self.tail_parameters() if include_tail else params

    def freeze_backbone(self, include_tail: bool = True) -> None:
        """Freeze the whole image tower; the tail stays trainable when ``include_tail``."""
        for p in self.visual.parameters():
            p.requires_grad_(False)
        for p in self.head_parameters(include_tail):
            p.requires_grad_(True)

    def unfreeze_last_blocks(self, n: int) -> list[nn.Parameter]:
        """Make the last ``n`` blocks trainable; returns the parameters that were newly unfrozen."""
        blocks = self.blocks()
        if n <= 0:
            return []
        newly: list[nn.Parameter] = []
        for block in blocks[-min(n, len(blocks)):]:
            for p in block.parameters():
                if not p.requires_grad:
                    p.requires_grad_(True)
                    newly.append(p)
        return newly


def build_encoder(cfg: EncoderConfig) -> SketchEncoder:
    """A randomly initialised encoder of the config's architecture (weights are loaded separately)."""
    cfg.validate()
    return SketchEncoder(cfg.model_cfg, embed_dim=cfg.embed_dim, head_hidden=cfg.head_hidden)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        # weights_only: a checkpoint from elsewhere must never run code while loading.
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelInvalid(f"{path} is not a plain-tensor PyTorch checkpoint ({exc}).",
                           hint="Convert it to safetensors; pickled code is never loaded.") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelInvalid(f"{path} holds no state dict.")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_pretrained_visual(encoder: SketchEncoder, source: str, architecture: str) -> str:
    """Initialise the image tower from pretrained CLIP weights; returns a description of the source.

    Args:
        encoder: the encoder whose ``visual`` is overwritten.
        source: a local open_clip checkpoint (``.safetensors``; ``.bin/.pt/.pth`` are read with
            ``weights_only=True``) holding ``visual.*`` keys or the tower's own keys; or an open_clip
            pretrained tag (e.g. "openai"), which open_clip downloads: only when configured explicitly.
        architecture: the open_clip name the tag belongs to.
    """
    path = Path(source).expanduser()
    if path.is_file():
        state = _read_state_dict(path)
        if any(k.startswith("visual.") for k in state):
            state = {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}
        label = f"file {path.name}"
    else:
        import open_clip

        if source not in open_clip.list_pretrained_tags_by_model(architecture):
            raise ConfigError(f"Pretrained weights {source!r} are neither a file nor an open_clip tag of "
                              f"{architecture}.")
        clip = open_clip.create_model(architecture, pretrained=source)
        state = clip.visual.state_dict()
        label = f"open_clip {architecture}/{source}"
    try:
        encoder.visual.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelInvalid(f"The pretrained weights ({label}) do not fit the {architecture} image tower: "
                           f"{str(exc).splitlines()[0]}") from exc
    log.info("image tower initialised from %s", label)
    return label
