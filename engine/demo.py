"""A demo for newcomers: tiny models, a sample gallery of real photos and a demo case, all labelled DEMO.

Why: a new user should see the whole flow (gallery, sketch search, candidates, decisions, sign-off,
report) in a minute, before any real model or photo is installed. Everything lives in a separate demo
home (never the user's real data folder) and says DEMO: the models have RANDOM weights, so every
score is meaningless. The photos are the real photos shipped inside scikit-image and insightface (no
download).

``sketchface demo`` (:mod:`engine.cli.demo`) prepares it from the command line; the first-run guide calls
:func:`prepare_demo` and restarts the app with :meth:`DemoInfo.env`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from engine import examiners
from engine.errors import ConfigError
from engine.models import import_bundle
from engine.progress import CancelToken, ProgressCallback, ProgressEvent, check

DEMO_NOTICE = ("DEMO: tiny models with RANDOM weights and sample photos. Every score is meaningless; "
               "nothing here is evidence.")
DEMO_CASE_NUMBER = "DEMO-0001"
DEMO_GALLERY = "DEMO sample photos"
DEMO_EXAMINER = "Demo Examiner"
DEMO_EXAMINER_ID = "DEMO-1"
DEMO_PASSPHRASE = "demo-examiner"  # the demo profile's key-file passphrase: the demo is not evidence
DEMO_GUIDE = (150.0, 90.0, 410.0, 420.0)  # the demo sketch's face guide, in its pixels
MARKER = "sketchface-demo.json"
_PATH_VARS = ("SKETCHFACE_DATA_DIR", "SKETCHFACE_CONFIG_DIR", "SKETCHFACE_LOG_DIR", "SKETCHFACE_MODELS_DIR",
              "SKETCHFACE_CASES_DIR", "SKETCHFACE_CACHE_DIR")
# scikit-image's shipped photos the demo reads (installer/collect.py ships exactly their files).
_SKIMAGE_PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "cat", "rocket", "immunohistochemistry", "clock")
_LFW_FACES = 24
_STEPS = 5


@dataclass(frozen=True)
class DemoInfo:
    """Where the demo is and what it holds; ``notice`` is the DEMO label front-ends must show."""

    home: Path
    case_id: str
    case_number: str
    gallery_id: str
    gallery_name: str
    photos: int
    search_id: int
    notice: str = DEMO_NOTICE

    def env(self) -> dict[str, str]:
        """The environment that makes SketchFace use the demo home (set it before starting the app)."""
        return {"SKETCHFACE_HOME": str(self.home)}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["home"] = str(self.home)
        return d


def default_demo_home() -> Path:
    """``SKETCHFACE_DEMO_HOME``, else a "SketchFace Demo" folder beside the real data folder."""
    explicit = os.environ.get("SKETCHFACE_DEMO_HOME")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_data_dir("SketchFace Demo", appauthor=False))


@contextlib.contextmanager
def demo_environment(home: Path) -> Iterator[Path]:
    """Point every SketchFace location at ``home`` for the duration (process-wide: call from one thread)."""
    saved = {k: os.environ.get(k) for k in ("SKETCHFACE_HOME", *_PATH_VARS)}
    os.environ["SKETCHFACE_HOME"] = str(home)
    for var in _PATH_VARS:
        os.environ.pop(var, None)
    try:
        yield home
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sample_photos(folder: Path) -> list[Path]:
    """Write the real photos shipped with scikit-image and insightface (and LFW faces) into ``folder``."""
    import cv2
    import insightface
    import skimage.data as data

    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []

    def write(name: str, bgr: np.ndarray) -> None:
        h, w = bgr.shape[:2]
        scale = min(1.0, 480 / max(h, w))
        if scale < 1:
            bgr = cv2.resize(bgr, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        path = folder / f"{name}.jpg"
        cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
        out.append(path)

    for name in _SKIMAGE_PHOTOS:
        try:  # a build without scikit-image's data files still gets insightface's photos
            img = np.asarray(getattr(data, name)())
        except (OSError, ValueError, ImportError):
            continue
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        write(f"skimage_{name}", np.ascontiguousarray(img[:, :, :3][:, :, ::-1]).astype(np.uint8))
    shipped = Path(insightface.__file__).parent / "data" / "images"
    for path in sorted(shipped.iterdir()) if shipped.is_dir() else []:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            write(f"insightface_{path.stem}", bgr)
    try:
        lfw = data.lfw_subset()
    except (OSError, ValueError, ImportError):
        lfw = np.zeros((0, 25, 25))
    for i in range(0, min(len(lfw), 2 * _LFW_FACES), 2):
        face = cv2.resize((lfw[i] * 255).astype(np.uint8), (160, 160), interpolation=cv2.INTER_CUBIC)
        write(f"lfw_{i:03d}", cv2.cvtColor(face, cv2.COLOR_GRAY2BGR))
    if not out:
        raise ConfigError("No sample photos are available in this installation (scikit-image and insightface "
                          "data files are missing).", hint="Reinstall SketchFace; the demo needs them.")
    return out


def demo_sketch_png() -> bytes:
    """A simple drawn face on a sheet (the demo's query; its guide is :data:`DEMO_GUIDE`)."""
    import cv2

    page = np.full((640, 560, 3), 255, np.uint8)
    cv2.ellipse(page, (280, 250), (110, 150), 0, 0, 360, (30, 30, 30), 3)
    for x in (235, 325):
        cv2.circle(page, (x, 215), 14, (20, 20, 20), 2)
        cv2.line(page, (x - 25, 188), (x + 25, 186), (30, 30, 30), 3)
    cv2.line(page, (280, 230), (268, 290), (40, 40, 40), 2)
    cv2.ellipse(page, (280, 330), (40, 12), 0, 0, 180, (40, 40, 40), 2)
    cv2.putText(page, "DEMO", (20, 620), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (90, 90, 90), 2)
    ok, buf = cv2.imencode(".png", page)
    if not ok:  # pragma: no cover - encoding a valid array does not fail
        raise ConfigError("The demo sketch could not be encoded.")
    return bytes(buf)


def _check_home(home: Path) -> DemoInfo | None:
    """The demo already prepared in ``home``, None for an empty folder; refuses a folder with real data."""
    marker = home / MARKER
    if marker.is_file():
        try:
            d = json.loads(marker.read_text("utf-8"))
            return DemoInfo(**{**d, "home": home})
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"The demo marker {marker} is damaged ({exc}).",
                              hint="Delete the demo folder and prepare the demo again.") from exc
    if home.exists() and any(home.iterdir()):
        raise ConfigError(f"{home} is not empty and holds no demo: the demo never shares a folder with real data.",
                          hint="Choose an empty folder for the demo (sketchface demo --home DIR).")
    return None


def prepare_demo(home: Path | None = None, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> DemoInfo:
    """Install tiny models, a sample gallery and a demo case (with one recorded search) into ``home``.

    Idempotent: a home already prepared is returned as it is. Runs with the SketchFace locations
    pointed at ``home`` (:func:`demo_environment`), so the user's real data is never touched.

    Args:
        home: the demo home (default :func:`default_demo_home`); must be empty or a demo home.
        progress: step reports (5 steps).
        cancel: stops between steps; an interrupted demo home is removed.
    """
    home = Path(home or default_demo_home()).expanduser().resolve()
    done = _check_home(home)
    if done is not None:
        return done
    home.mkdir(parents=True, exist_ok=True)
    report: Callable[[int, str], None] = (
        (lambda n, msg: progress(ProgressEvent(n, _STEPS, msg))) if progress else (lambda n, msg: None))
    try:
        with demo_environment(home):
            info = _build(home, report, cancel)
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)  # never leave a half-built demo that looks finished
        raise
    (home / MARKER).write_text(json.dumps(info.to_dict(), indent=2), "utf-8")
    report(_STEPS, "Demo ready")
    return info


def _build(home: Path, report: Callable[[int, str], None], cancel: CancelToken | None) -> DemoInfo:
    from engine import demo_models  # lazy: pulls onnx
    from engine.cases import add_sketch, create_case  # lazy: pulls cv2
    from engine.gallery import create_gallery  # lazy: pulls cv2
    from engine.search import Query, Searcher  # lazy: pulls cv2
    from engine.workstation import record_search  # lazy: pulls cv2

    report(0, "Building the tiny demo models (random weights)")
    bundle = home / "demo-model-bundle"
    demo_models.build(bundle)
    check(cancel)
    report(1, "Installing the demo models")
    import_bundle(bundle, cancel=cancel)
    shutil.rmtree(bundle, ignore_errors=True)
    report(2, "Writing sample photos")
    photos = sample_photos(home / "sample-photos")
    check(cancel)
    report(3, "Importing the sample gallery")
    gallery = create_gallery(DEMO_GALLERY)
    searcher = Searcher()
    try:
        gallery.add([home / "sample-photos"], pipeline=searcher.pipeline, cancel=cancel)
        report(4, "Opening the demo case and running a demo search")

        if not examiners.profiles():  # the demo's own examiner, in the demo home only
            examiners.add(DEMO_EXAMINER, DEMO_EXAMINER_ID, passphrase=DEMO_PASSPHRASE)
        sketch = demo_sketch_png()
        with create_case(DEMO_CASE_NUMBER, "DEMO case: random-weight models, meaningless scores",
                         examiner=DEMO_EXAMINER, witnesses=["DEMO witness"], notes=DEMO_NOTICE,
                         user=DEMO_EXAMINER) as case:
            add_sketch(case, sketch, witness="DEMO witness", name="DEMO sketch", note=DEMO_NOTICE,
                       user=DEMO_EXAMINER)
            queries = [Query("sketch", sketch, name="DEMO sketch", face_box=DEMO_GUIDE)]
            result = searcher.search(queries, [gallery], k=10, cancel=cancel)
            rec = record_search(case, result, queries, [gallery], label="DEMO search (random weights: "
                                "scores are meaningless)", user=DEMO_EXAMINER)
            return DemoInfo(home, case.case_id, DEMO_CASE_NUMBER, gallery.id, gallery.name, len(photos), rec.id)
    finally:
        gallery.close()
