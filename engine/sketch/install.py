"""Install a trained sketch encoder into the models folder, after checking it really works.

Why the checks: an installed encoder silently shapes every sketch search. Before it replaces the
current one it must load strictly from its own config, produce finite unit vectors, belong to the
installed ArcFace model's space, and (optionally) export to ONNX with PyTorch parity. The new folder is
assembled beside the old one and swapped in by rename, so a failure leaves the current encoder as is.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import models, paths
from engine.errors import ModelInvalid, ModelMissing
from engine.fsutil import atomic_write_bytes, fsync_dir, sha256_bytes, sha256_file
from engine.models.digests import Pin, write_pins
from engine.progress import CancelToken, ProgressCallback, ProgressEvent, check
from engine.sketch.checkpoint import export_train_state, load_encoder
from engine.sketch.config import CONFIG_NAME, ONNX_NAME, WEIGHTS_NAME, check_arcface_compatible
from engine.sketch.embedder import MODEL_ID, installed_arcface_sha256
from engine.sketch.onnx_export import export_onnx, parity_inputs


@dataclass(frozen=True)
class InstallReport:
    """What was installed and what was verified."""

    model_dir: str
    source: str
    model_sha256: str
    arcface_sha256: str
    arcface_verified: bool
    onnx: dict[str, Any] | None
    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def resolve_source(src: Path, work: Path) -> Path:
    """An engine checkpoint folder for ``src``: itself, or converted from a trainer state / run folder."""

    src = Path(src)
    if src.is_file() and src.suffix in (".pt", ".pth"):
        return export_train_state(src, work / "converted")
    if src.is_dir():
        if (src / CONFIG_NAME).is_file() and (src / WEIGHTS_NAME).is_file():
            return src
        for name in ("export", "best.pt", "last.pt"):
            cand = src / name
            if cand.is_dir() and (cand / CONFIG_NAME).is_file():
                return cand
            if cand.is_file():
                return export_train_state(cand, work / "converted")
    raise ModelMissing(f"{src} is not a sketch-encoder checkpoint.",
                       hint="Give the folder written by 'python -m trainer export' (model.safetensors + "
                            "config.json), a training run folder, or its best.pt.")


def verify_checkpoint(ckpt_dir: Path) -> dict[str, Any]:
    """Load strictly and embed the parity inputs: vectors must be finite and of unit length."""
    import torch


    encoder, cfg = load_encoder(ckpt_dir, device="cpu")
    with torch.inference_mode():
        out = encoder(torch.from_numpy(parity_inputs(cfg, n_random=1))).numpy()
    norms = np.linalg.norm(out, axis=1)
    if out.shape[1] != cfg.embed_dim or not np.all(np.isfinite(out)) or np.max(np.abs(norms - 1.0)) > 1e-3:
        raise ModelInvalid(f"The sketch encoder in {ckpt_dir} does not produce finite unit vectors.",
                           hint="The weights are damaged or the training diverged; re-export from best.pt.")
    if cfg.arcface_sha256 is None:
        raise ModelInvalid("The sketch encoder does not record the ArcFace model it was trained against.",
                           hint="Re-export it with 'python -m trainer export' from its training run.")
    return {"config": cfg, "encoder": encoder}


def _swap_in(staging: Path, dest: Path) -> None:
    old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(staging, dest)
    fsync_dir(dest.parent)
    shutil.rmtree(old, ignore_errors=True)


def _pin(dest: Path, source: str) -> None:
    """Record the installed files' digests in the models lock file (tampering is then detected)."""

    pins = [Pin(MODEL_ID, p.name, sha256_file(p), p.stat().st_size, source)
            for p in sorted(dest.iterdir()) if p.is_file()]
    write_pins(pins)


def install_checkpoint(src: str | os.PathLike[str], *, onnx: bool = True, tolerance: float = 1e-4,
                       arcface_sha256: str | None = None, progress: ProgressCallback | None = None,
                       cancel: CancelToken | None = None) -> InstallReport:
    """Verify a trained encoder and install it as ``models_dir()/sketch_encoder``.

    Args:
        src: engine checkpoint folder, trainer run folder, or ``best.pt``/``last.pt``.
        onnx: also export ``model.onnx`` (kept only when it matches PyTorch within ``tolerance``).
        arcface_sha256: ArcFace digest to check against; None uses the installed ArcFace (when installed).
        progress, cancel: engine progress callback and cancel token.

    Raises:
        ModelInvalid: the checkpoint fails a check (the current encoder is left untouched).
    """

    def step(i: int, msg: str) -> None:
        check(cancel)
        if progress is not None:
            progress(ProgressEvent(i, 4, msg))

    against = "given ArcFace model"
    if arcface_sha256 is None:
        arcface_sha256, against = installed_arcface_sha256(), "installed ArcFace model"
    root = paths.models_dir()
    with tempfile.TemporaryDirectory(prefix=".sketch-install-", dir=root) as tmp:
        work = Path(tmp)
        step(0, "Reading the checkpoint")
        ckpt = resolve_source(Path(src), work)
        staging = work / "stage"
        staging.mkdir()
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            shutil.copy2(ckpt / name, staging / name)
        step(1, "Checking the encoder")
        checked = verify_checkpoint(staging)
        cfg = checked["config"]
        check_arcface_compatible(cfg.arcface_sha256, arcface_sha256, against=against)
        onnx_report = None
        if onnx:
            step(2, "Exporting to ONNX and checking parity")
            onnx_report = export_onnx(checked["encoder"], cfg, staging / ONNX_NAME, tolerance=tolerance).to_dict()
            onnx_report["onnx_path"] = str(models.model_dir(MODEL_ID) / ONNX_NAME)
        step(3, "Installing")
        model_sha = sha256_file(staging / WEIGHTS_NAME)
        dest = models.model_dir(MODEL_ID)
        _swap_in(staging, dest)
        _pin(dest, source=str(Path(src).resolve()))
        step(4, "Installed")
    return InstallReport(model_dir=str(dest), source=str(src), model_sha256=model_sha,
                         arcface_sha256=str(cfg.arcface_sha256), arcface_verified=arcface_sha256 is not None,
                         onnx=onnx_report, metrics=dict(cfg.metrics))


def export_installed_onnx(tolerance: float = 1e-4, opset: int = 17) -> dict[str, Any]:
    """(Re-)export the installed encoder to ``model.onnx`` with a parity check; returns the report.

    Why from the checked bytes, and why only ``model.onnx`` is pinned: the weights and config are read
    once, checked against their pins and the encoder is built from those bytes, so a weights file
    swapped after the check is neither exported nor signed. The export is written in a private temporary
    folder and read back once; those bytes are installed and pinned. The other files keep the pins they
    were installed with (re-pinning them would sign whatever is in the folder now).
    """

    locator = models.ModelLocator()
    purpose = "exporting the sketch encoder to ONNX"
    weights = locator.load(MODEL_ID, WEIGHTS_NAME, purpose)
    config = locator.load(MODEL_ID, CONFIG_NAME, purpose)
    folder = locator.folder(MODEL_ID)
    encoder, cfg = load_encoder(folder, device="cpu", weights_data=weights.data, config_data=config.data)
    with tempfile.TemporaryDirectory(prefix="sketchface-onnx-") as tmp:
        staged = Path(tmp) / ONNX_NAME
        report = export_onnx(encoder, cfg, staged, opset=opset, tolerance=tolerance).to_dict()
        data = staged.read_bytes()
    target = folder / ONNX_NAME
    atomic_write_bytes(target, data)
    try:
        write_pins([Pin(MODEL_ID, ONNX_NAME, sha256_bytes(data), len(data), "sketchface sketch export-onnx")])
    except Exception:
        target.unlink(missing_ok=True)  # never leave an export without its pin
        raise
    report["onnx_path"] = str(target)
    report["model_sha256"] = weights.ref.sha256  # the weights exported, as checked
    return report
