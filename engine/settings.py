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
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"Unknown device {self.device!r}; choose one of {', '.join(DEVICES)}.")
        if self.det_size < 128 or self.det_size % 32:
            raise ConfigError(f"Detector size {self.det_size} must be a multiple of 32 and at least 128.")
        for name in ("search_top_k", "hnsw_m", "hnsw_ef_construction", "hnsw_ef", "ingest_batch", "ingest_workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"Setting {name} must be a positive number.")


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
