"""The sketch-encoder checkpoint: ``model.safetensors`` + ``config.json``, and import of trainer states.

Why safetensors: a model file received from another unit or downloaded is data, never code;
safetensors cannot execute anything on load. Trainer states (``last.pt``/``best.pt``) hold optimizer
state too and are torch files; they are read with ``torch.load(weights_only=True)`` only, which
refuses pickled objects other than tensors and plain containers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ModelInvalid, ModelMissing
from engine.fsutil import atomic_path
from engine.sketch.config import CONFIG_NAME, WEIGHTS_NAME, EncoderConfig

if TYPE_CHECKING:
    import torch

    from engine.sketch.model import SketchEncoder

# What a trainer state (last.pt / best.pt) holds that the engine reads; the trainer writes these keys.
TRAIN_STATE_FORMAT = "sketchface.train_state"
TRAIN_STATE_VERSION = 1


def save_encoder(out_dir: str | os.PathLike[str], state_dict: dict[str, torch.Tensor], cfg: EncoderConfig) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``out_dir`` (each file atomically).

    Args:
        out_dir: destination folder (created).
        state_dict: the :class:`SketchEncoder` state dict to store (tensors are copied to CPU, contiguous).
        cfg: the encoder's config (validated first).
    """
    from safetensors.torch import save_file

    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    with atomic_path(out / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "sketchface.sketch_encoder"})
    cfg.save(out / CONFIG_NAME)
    return out


def load_config(ckpt_dir: str | os.PathLike[str], data: bytes | None = None) -> EncoderConfig:
    """The config of a checkpoint folder (no torch needed).

    ``data``: the config's bytes, already read and checked against their pin; then the file is not read
    again (what was checked is what is used).
    """
    path = Path(ckpt_dir) / CONFIG_NAME
    if data is not None:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ModelInvalid(f"The sketch encoder config {path} is unreadable ({exc}).",
                               hint="Re-export or re-install the encoder.") from exc
        if not isinstance(doc, dict):
            raise ModelInvalid(f"The sketch encoder config {path} is not a JSON object.")
        return EncoderConfig.from_dict(doc)
    if not path.is_file():
        raise ModelMissing(f"No sketch-encoder config at {path}.",
                           hint="A sketch-encoder folder holds model.safetensors and config.json "
                                "(python -m trainer export writes them).")
    return EncoderConfig.load(path)


def load_encoder(ckpt_dir: str | os.PathLike[str], device: str = "cpu", *, weights_data: bytes | None = None,
                 config_data: bytes | None = None) -> tuple[SketchEncoder, EncoderConfig]:
    """Rebuild the encoder from its own config and load its weights strictly, in eval mode.

    ``weights_data`` / ``config_data``: the files' bytes, already read and checked against their pins;
    given, they are loaded from memory and the folder is not read again.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load, load_file

    from engine.sketch.model import build_encoder  # lazy: pulls torch

    ckpt = Path(ckpt_dir)
    cfg = load_config(ckpt, config_data)
    weights = ckpt / WEIGHTS_NAME
    if weights_data is None and not weights.is_file():
        raise ModelMissing(f"No sketch-encoder weights at {weights}.")
    try:
        state = load_file(str(weights), device="cpu") if weights_data is None else load(weights_data)
    except (SafetensorError, OSError) as exc:
        raise ModelInvalid(f"The sketch-encoder weights {weights} are unreadable ({exc}).",
                           hint="Re-install the encoder; the file may be damaged.") from exc
    model = build_encoder(cfg)
    _load_strict(model, state, str(weights))
    return model.to(device).eval(), cfg


def _load_strict(model: SketchEncoder, state: dict[str, torch.Tensor], where: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelInvalid(f"The weights in {where} do not match the architecture in their config "
                           f"({first}).", hint="Re-export the encoder from its training run.") from exc


def read_train_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a trainer state file without unpickling code (``weights_only=True``)."""
    import torch

    path = Path(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError... all mean "not ours/damaged"
        raise ModelInvalid(f"{path} is not a readable SketchFace trainer checkpoint ({exc}).",
                           hint="Only plain-tensor checkpoints are loaded; pickled code never is.") from exc
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise ModelInvalid(f"{path} is not a SketchFace trainer checkpoint.")
    if int(state.get("format_version", 0)) > TRAIN_STATE_VERSION:
        raise ModelInvalid(f"{path} was written by a newer trainer; update SketchFace to read it.")
    return state


def export_train_state(state_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                       weights: str = "ema", metrics: dict[str, Any] | None = None) -> Path:
    """Convert a trainer state into an engine checkpoint folder (weights checked against the config).

    Args:
        state_path: ``best.pt`` or ``last.pt`` of a training run.
        out_dir: where ``model.safetensors`` + ``config.json`` go.
        weights: "best" (the weights that scored higher at the state's evaluation, recorded by the
            trainer), "ema" (the mean teacher) or "student".
        metrics: evaluation results to record (defaults to those saved in the state).
    """
    from engine.sketch.model import build_encoder  # lazy: pulls torch

    if weights not in ("best", "ema", "student"):
        raise ModelInvalid(f"Unknown weights {weights!r}: choose 'best', 'ema' or 'student'.")
    state = read_train_state(state_path)
    if weights == "best":
        weights = str(state.get("best_weights") or "ema")
    cfg = EncoderConfig.from_dict(state["encoder_config"])
    sd = state["ema"] if weights == "ema" else state["model"]
    _load_strict(build_encoder(cfg), sd, str(state_path))
    cfg.weights = weights
    cfg.metrics = dict(metrics if metrics is not None else state.get("metrics") or {})
    cfg.training = {**cfg.training, "step": int(state.get("step", 0)), "epoch": int(state.get("epoch", 0)),
                    "source": Path(state_path).name}
    return save_encoder(out_dir, sd, cfg)
