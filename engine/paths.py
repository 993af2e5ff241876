"""Where SketchFace keeps its data, configuration and logs (platformdirs; relocatable).

``SKETCHFACE_HOME`` moves everything (data, config, logs) under one folder: tests, scripts and
portable installs use it. Every folder made here is owner-only (0700), whatever the umask.
Finer overrides: ``SKETCHFACE_DATA_DIR``, ``SKETCHFACE_CONFIG_DIR``,
``SKETCHFACE_LOG_DIR``, ``SKETCHFACE_MODELS_DIR``, ``SKETCHFACE_CASES_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import platformdirs

import engine
from engine.errors import CaseError
from engine.fsutil import private_dir

APP_NAME = "SketchFace"


def _home() -> Path | None:
    home = os.environ.get("SKETCHFACE_HOME")
    return Path(home).expanduser() if home else None


def _pick(env: str, sub: str, default: Callable[[str], str]) -> Path:
    """The folder from ``env``, else under ``SKETCHFACE_HOME``, else the platform's default.

    ``default`` is called only when needed: these functions run on every case write (the trust list
    and profiles live in the config folder), and the platform lookup is the costly part.
    """
    explicit = os.environ.get(env)
    if explicit:
        path = Path(explicit).expanduser()
    elif (home := _home()) is not None:
        path = home / sub
    else:
        path = Path(default(APP_NAME))
    return private_dir(path)


def _platform(where: Callable[..., str]) -> Callable[[str], str]:
    return lambda app: where(app, appauthor=False)


def data_dir() -> Path:
    return _pick("SKETCHFACE_DATA_DIR", "data", _platform(platformdirs.user_data_dir))


def config_dir() -> Path:
    return _pick("SKETCHFACE_CONFIG_DIR", "config", _platform(platformdirs.user_config_dir))


def log_dir() -> Path:
    return _pick("SKETCHFACE_LOG_DIR", "logs", _platform(platformdirs.user_log_dir))


def cache_dir() -> Path:
    return _pick("SKETCHFACE_CACHE_DIR", "cache", _platform(platformdirs.user_cache_dir))


def models_dir() -> Path:
    explicit = os.environ.get("SKETCHFACE_MODELS_DIR")
    path = Path(explicit).expanduser() if explicit else data_dir() / "models"
    return private_dir(path)


def galleries_dir() -> Path:
    return private_dir(data_dir() / "galleries")


def cases_dir() -> Path:
    explicit = os.environ.get("SKETCHFACE_CASES_DIR")
    path = Path(explicit).expanduser() if explicit else data_dir() / "cases"
    return private_dir(path)


def fonts_dir() -> Path:
    """The folder of the bundled DejaVu fonts (resources/fonts), wherever the app was installed.

    Looks beside the ``engine`` package (a source checkout or a PyInstaller one-dir build, which keeps
    ``resources/`` at the top) and falls back to the Debian fonts-dejavu-core location.
    """
    here = Path(engine.__file__).resolve().parent
    candidates = [here.parent / "resources" / "fonts", here / "resources" / "fonts",
                  Path("/usr/share/fonts/truetype/dejavu")]
    for c in candidates:
        if (c / "DejaVuSans.ttf").is_file():
            return c
    raise CaseError("The report fonts (DejaVuSans.ttf) were not found.",
                    hint=f"Reinstall SketchFace; looked in {', '.join(map(str, candidates))}.")
