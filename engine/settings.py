"""Typed user settings, saved as TOML in the config dir; unknown keys are kept, bad values refused."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from engine import paths
from engine.errors import ConfigError
from engine.fsutil import atomic_write_text

DEVICES = ("auto", "cuda", "cpu")


@dataclass
class Settings:
    """What the examiner can change; every field has a safe default.

    Attributes:
        device: compute device for models: "auto" (CUDA when usable, else CPU), "cuda" or "cpu".
        det_size: detector input size (single scale, square).
        search_top_k: default number of candidates per search.
        hnsw_m, hnsw_ef_construction, hnsw_ef: HNSW parameters for new galleries / queries.
        ingest_batch: faces embedded per batch.
        ingest_workers: decoding threads during ingest.
        cases_dir: where cases live ("" = default data dir), e.g. an encrypted volume.
        cloud_backend_enabled: the Replicate backend is off unless the user turns it on.
        examiner: default examiner name written into audit entries.
        gen_*: Settings > Generation: GPU memory plan ("auto" from free VRAM), VAE tiling (auto/on/off),
            fp16, torch.compile, the safety checker (on, as the reference), a VRAM cap in GB (0 = none),
            candidates per UNet call.
    """

    device: str = "auto"
    det_size: int = 640
    search_top_k: int = 50
    hnsw_m: int = 32  # bench/README.md: M=16 stays under 0.99 recall@10 at 100k faces; 32 reaches it in 2.4 KB/face
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 200
    ingest_batch: int = 32
    ingest_workers: int = 2
    cases_dir: str = ""
    cloud_backend_enabled: bool = False
    examiner: str = ""
    # Settings > Generation (engine.generate.memory / RuntimeOptions): the GPU memory plan and its overrides.
    gen_memory_plan: str = "auto"
    gen_vae_tiling: str = "auto"
    gen_half_precision: bool = True
    gen_compile_unet: bool = False
    gen_safety_checker: bool = True
    gen_vram_budget_gb: float = 0.0
    gen_batch_candidates: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"Unknown device {self.device!r}; choose one of {', '.join(DEVICES)}.")
        if self.det_size < 128 or self.det_size % 32:
            raise ConfigError(f"Detector size {self.det_size} must be a multiple of 32 and at least 128.")
        for name in ("search_top_k", "hnsw_m", "hnsw_ef_construction", "hnsw_ef", "ingest_batch", "ingest_workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"Setting {name} must be a positive number.")
        self._validate_generation()

    def _validate_generation(self) -> None:
        plans = ("auto", "resident", "model_offload", "sequential_offload")
        if self.gen_memory_plan not in plans:
            raise ConfigError(f"Unknown GPU memory plan {self.gen_memory_plan!r}; choose one of {', '.join(plans)}.")
        if self.gen_vae_tiling not in ("auto", "on", "off"):
            raise ConfigError(f"VAE tiling must be auto, on or off, not {self.gen_vae_tiling!r}.")
        for name in ("gen_half_precision", "gen_compile_unet", "gen_safety_checker"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"Setting {name} must be true or false.")
        if not isinstance(self.gen_vram_budget_gb, int | float) or self.gen_vram_budget_gb < 0:
            raise ConfigError("Setting gen_vram_budget_gb must be 0 (no cap) or a number of GB.")
        if not isinstance(self.gen_batch_candidates, int) or not 1 <= self.gen_batch_candidates <= 16:
            raise ConfigError("Setting gen_batch_candidates must be a whole number from 1 to 16.")


def settings_path() -> Path:
    return paths.config_dir() / "settings.toml"


def load(path: Path | None = None) -> Settings:
    """Read settings; a missing file gives defaults, a malformed one a :class:`ConfigError`."""
    path = path or settings_path()
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Settings file {path} is not valid TOML: {exc}",
                          hint="Fix or delete it to return to defaults.") from exc
    known = {f.name for f in dataclasses.fields(Settings)} - {"extra"}
    values = {k: v for k, v in raw.items() if k in known}
    extra = {k: v for k, v in raw.items() if k not in known}
    try:
        s = Settings(**values, extra=extra)
    except TypeError as exc:
        raise ConfigError(f"Settings file {path} has a bad value: {exc}") from exc
    s.validate()
    return s


def save(settings: Settings, path: Path | None = None) -> None:
    settings.validate()
    data = dataclasses.asdict(settings)
    extra = data.pop("extra")
    data.update(extra)
    atomic_write_text(path or settings_path(), tomli_w.dumps(data))
