"""SketchEncoder: an OpenCLIP image tower plus a projection head into ArcFace's 512-D unit sphere.

The one model definition used by the trainer, the exporter and the app. This module imports torch at
module level on purpose (a module-level ``nn.Module`` subclass needs it); nothing imports it at
start-up: ``engine.sketch`` loads it lazily when a model is first built.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch  # noqa: TID253 - only imported when a model is built (engine.sketch imports it lazily)
import torch.nn.functional as F  # noqa: TID253
from torch import nn  # noqa: TID253

from engine import models
from engine.errors import ConfigError, ModelInvalid
from engine.fsutil import sha256_file
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


NO_PRETRAINED = "none"


@dataclass(frozen=True)
class PretrainedSource:
    """Where the image tower's starting weights come from, and what they require.

    Attributes:
        kind: "managed" (an installed manifest model), "file", "tag" (open_clip downloads it) or "none".
        label: for people and the run's events.
        path: the weights file (None for a tag or "none").
        architecture: the open_clip architecture the weights belong to.
        tag: open_clip pretrained tag, when known (decides the activation).
        model_id: manifest id of a managed model.
        sha256: digest of the file that was loaded (None for a tag or "none").
        quick_gelu: the activation the weights were trained with (open_clip's pretrained config for the
            tag); None when unknown (a file without a tag).
    """

    kind: str
    label: str
    path: Path | None = None
    architecture: str = ""
    tag: str | None = None
    model_id: str | None = None
    sha256: str | None = None
    quick_gelu: bool | None = None

    def record(self) -> dict[str, Any]:
        """What the exported encoder's config.json keeps about its starting weights."""
        doc: dict[str, Any] = {"source": self.label, "kind": self.kind, "model_id": self.model_id,
                               "architecture": self.architecture or None, "tag": self.tag, "sha256": self.sha256,
                               "file": self.path.name if self.path else None, "quick_gelu": self.quick_gelu}
        if self.kind == NO_PRETRAINED:
            doc["warning"] = ("Trained from a randomly initialised image tower (model.pretrained='none'): "
                              "expect much lower accuracy than from pretrained CLIP weights.")
        return doc


def _tag_quick_gelu(architecture: str, tag: str | None) -> bool | None:
    """Whether open_clip's pretrained config says ``tag`` was trained with QuickGELU; None if unknown."""
    if not tag:
        return None
    import open_clip

    base = architecture.removesuffix("-quickgelu")
    cfg = open_clip.get_pretrained_cfg(base, tag) or open_clip.get_pretrained_cfg(architecture, tag)
    if not cfg:
        raise ConfigError(f"open_clip knows no pretrained tag {tag!r} for {base}.",
                          hint=f"Known tags: {', '.join(open_clip.list_pretrained_tags_by_model(base))}.")
    return bool(cfg.get("quick_gelu", False))


def resolve_pretrained(source: str, architecture: str, tag: str = "") -> PretrainedSource:
    """Find the pretrained weights named by ``model.pretrained``; missing ones are an error, never random weights.

    Args:
        source: a manifest model id (installed like every model), a local open_clip checkpoint, an
            open_clip tag of ``architecture``, or "none" (random initialisation, explicitly).
        architecture: the open_clip architecture being trained.
        tag: the pretrained tag a local file was trained as (for its activation).
    """

    if source == NO_PRETRAINED:
        return PretrainedSource(NO_PRETRAINED, "none (random initialisation)", architecture=architecture)
    if source in models.MODELS:
        spec = models.get_spec(source)
        # Checked against its published digest (or its import pin); ModelMissing says how to get it.
        path = models.require(source, purpose="training the sketch encoder")
        digest = models.digest(source)
        arch = spec.extra.get("open_clip_architecture", architecture)
        mtag = spec.extra.get("open_clip_tag") or tag or None
        return PretrainedSource("managed", f"{source} ({path.name})", path, arch, mtag, source, digest,
                                _tag_quick_gelu(arch, mtag))
    path = Path(source).expanduser()
    if path.is_file():
        return PretrainedSource("file", f"file {path.name}", path, architecture, tag or None, None,
                                sha256_file(path), _tag_quick_gelu(architecture, tag or None))
    import open_clip

    base = architecture.removesuffix("-quickgelu")
    if source in open_clip.list_pretrained_tags_by_model(base):
        return PretrainedSource("tag", f"open_clip {base}/{source}", None, base, source, None, None,
                                _tag_quick_gelu(base, source))
    raise ConfigError(f"Pretrained weights {source!r} are neither an installed model, a file, nor an open_clip tag "
                      f"of {architecture}.",
                      hint="Leave model.pretrained at its default (the managed OpenCLIP checkpoint), give a file, "
                           "or set model.pretrained='none' to train from random weights.")


def apply_pretrained_activation(model_cfg: dict[str, Any], src: PretrainedSource, explicit: bool | None) -> dict[str, Any]:
    """The tower config with the activation the pretrained weights need; an explicit contrary setting is refused.

    Why: open_clip's ``ViT-B-16`` with the OpenAI weights builds a GELU tower although those weights
    were trained with QuickGELU; the load succeeds and every feature is quietly wrong.

    Args:
        model_cfg: the resolved tower config.
        src: the pretrained weights.
        explicit: the activation the user asked for (``quick_gelu`` in model_cfg, a ``-quickgelu``
            architecture), or None when it only came from the architecture's default.

    Weights whose activation is unknown (a local file without a pretrained tag) are refused unless
    the activation is given explicitly: the architecture's default would be a guess, and the OpenAI
    weights under the default GELU load without an error and give wrong features.
    """
    need = src.quick_gelu
    if need is None:
        if explicit is None and src.kind != NO_PRETRAINED:
            raise ConfigError(f"The activation the pretrained weights ({src.label}) were trained with is unknown: "
                              "a weights file does not say whether it needs QuickGELU or GELU, and the wrong one "
                              "loads without an error but gives wrong features.",
                              hint="Name the weights' open_clip pretrained tag (model.pretrained_tag, e.g. 'openai' "
                                   "or 'laion2b_s34b_b88k'), or state the activation (model.activation='quick_gelu' "
                                   "or 'gelu').")
        return model_cfg if explicit is None else {**model_cfg, "quick_gelu": explicit}
    if explicit is not None and explicit != need:
        have, want = ("QuickGELU", "GELU") if explicit else ("GELU", "QuickGELU")
        raise ConfigError(f"The pretrained weights ({src.label}, tag {src.tag}) were trained with {want}, but the "
                          f"tower is configured with {have}: its features would be quietly wrong.",
                          hint="Remove quick_gelu from model.model_cfg (or the -quickgelu suffix) so the "
                               "activation follows the weights, or use weights trained with that activation.")
    return {**model_cfg, "quick_gelu": need}


def load_pretrained_visual(encoder: SketchEncoder, src: PretrainedSource | str, architecture: str = "") -> str:
    """Initialise the image tower from pretrained CLIP weights (strictly); returns the source's label.

    Files are read as safetensors, or ``.bin/.pt/.pth`` with ``weights_only=True``; they may hold
    ``visual.*`` keys (a whole open_clip checkpoint) or the tower's own keys. A tag is downloaded by
    open_clip: only when configured explicitly. A string is resolved with :func:`resolve_pretrained`.
    """
    if isinstance(src, str):
        src = resolve_pretrained(src, architecture)
    if src.kind == NO_PRETRAINED:
        return src.label
    if src.path is not None:
        state = _read_state_dict(src.path)
        if any(k.startswith("visual.") for k in state):
            state = {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}
    else:
        import open_clip

        clip = open_clip.create_model(src.architecture, pretrained=src.tag)
        state = clip.visual.state_dict()
    try:
        encoder.visual.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelInvalid(f"The pretrained weights ({src.label}) do not fit the {src.architecture} image tower: "
                           f"{str(exc).splitlines()[0]}") from exc
    log.info("image tower initialised from %s", src.label)
    return src.label
