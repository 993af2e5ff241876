"""Screenshots of every main view of the real workstation window, for review and documentation.

    python tools/screenshots.py OUTDIR [--record-only]

Runs the app under Xvfb (``QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1280x800x24"``; it re-starts
itself that way when no display is set; set ``QT_QPA_PLATFORM=offscreen`` to skip the X server) in a
temporary SKETCHFACE_HOME seeded with the tiny test models, a small gallery of real faces (LFW subset
and insightface's sample photos, plus an unreadable file and a blank image) and a case, then saves:

    01_first_run_guide.png    02_main_sketch.png      03_jobs_import.png   04_gallery.png
    05_results.png            06_compare.png          07_settings_models.png
    08_settings_general.png   09_case_details.png     10_scan_import.png
    11_reconstruct.png        (tiny generation models: the outputs are noise, labelled SYNTHETIC)
    12_signoff.png            13_report_export.png    14_audit_panel.png   15_rerun.png
    16_blind_review.png       17_archive_written.png

``--record-only`` skips 06-11 (settings, scans and the slow tiny generation run).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREEN = (1280, 800)


def _reexec_under_xvfb() -> None:
    """Start this script again inside xvfb-run when there is no X display (and no platform was forced)."""
    if os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY") or os.environ.get("_SKETCHFACE_SHOTS_CHILD"):
        return
    if shutil.which("xvfb-run") is None:
        print("xvfb-run not found: install xvfb xauth libxcb-cursor0 (see the script's docstring); "
              "falling back to the offscreen platform", file=sys.stderr)
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", _SKETCHFACE_SHOTS_CHILD="1")
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24", sys.executable, *sys.argv]
    sys.exit(subprocess.call(cmd, env=env))


# -- seeding -------------------------------------------------------------------------------------
def seed_photos(folder: Path, n_lfw: int = 36, offset: int = 0) -> Path:
    """Booking-style photos (an LFW face centred on a plain backdrop), a real sample photo, an unreadable
    file and a blank image.

    The tiny test detector reports a face where its fixed boxes see texture; a face centred on a plain
    backdrop is exactly what it finds, so thumbnails and results show faces rather than random crops.
    """
    import cv2
    import numpy as np
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    # Keep well-exposed faces without black borders (a few LFW crops are dark or letterboxed).
    lfw = [f for f in data.lfw_subset() if f.mean() > 0.3 and f[:3].mean() > 0.12 and f[-3:].mean() > 0.12]
    rng = np.random.default_rng(7)
    ramp = np.linspace(198, 214, 480, dtype=np.float32)[:, None, None]
    backdrop = np.repeat(np.repeat(ramp, 480, axis=1), 3, axis=2) * np.array([1.0, 0.99, 0.97], np.float32)

    def booking_photo(face_bgr: np.ndarray, tone: np.ndarray) -> np.ndarray:
        photo = backdrop.copy()
        photo[165:315, 165:315] = cv2.resize(face_bgr, (150, 150), interpolation=cv2.INTER_CUBIC) * tone
        return np.clip(photo, 0, 255).astype(np.uint8)

    for i in range(n_lfw):
        face = cv2.cvtColor((lfw[(offset + i) % len(lfw)] * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        tone = np.array([0.92 + 0.06 * rng.random(), 0.97, 1.0], np.float32)  # BGR: a warm skin tone
        cv2.imwrite(str(folder / f"subject_{offset + i:03d}.jpg"), booking_photo(face.astype(np.float32), tone))
    try:
        import insightface

        sample = Path(insightface.__file__).parent / "data" / "images" / "Tom_Hanks_54745.png"
        if sample.exists() and offset == 0:
            face = cv2.imread(str(sample)).astype(np.float32)
            cv2.imwrite(str(folder / "subject_portrait.jpg"), booking_photo(face, np.ones(3, np.float32)))
    except ImportError:
        pass
    (folder / "scan_damaged.jpg").write_bytes((folder / f"subject_{offset:03d}.jpg").read_bytes()[:300])
    cv2.imwrite(str(folder / "blank_wall.png"), np.full((200, 200, 3), 228, np.uint8))
    return folder


def seed_metadata(folder: Path) -> Path:
    rows = ["path,subject_id,sex,birth_year,source"]
    for i, p in enumerate(sorted(folder.glob("subject_*.jpg"))):
        rows.append(f"{p.name},S-{1000 + i},{'MF'[i % 2]},{1960 + i % 40},booking")
    csv = folder.parent / "metadata.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return csv


def tiny_models_stand_in() -> None:
    """The tiny models stand in for real ones whose publishers state a SHA-256 and size (as in the tests):
    for this run only, those published values are set aside so the stand-ins load."""
    import dataclasses

    from engine.models import MODELS

    for model_id, spec in list(MODELS.items()):
        if any(f.sha256 or f.size for f in spec.files):
            MODELS[model_id] = dataclasses.replace(
                spec, files=tuple(dataclasses.replace(f, sha256=None, size=None) for f in spec.files))


def install_tiny_models(home_models: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.fixtures import tiny_models

    with tempfile.TemporaryDirectory() as tmp:
        tiny_models.build(Path(tmp), extras=False)
        for child in Path(tmp).iterdir():
            if child.is_dir():
                shutil.copytree(child, home_models / child.name, dirs_exist_ok=True)


def install_tiny_generation_models(home_models: Path) -> None:
    """The tiny diffusion, FaceID, ControlNet, InstructPix2Pix and OpenCLIP models (seconds to build)."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures import tiny_diffusion

    with tempfile.TemporaryDirectory() as tmp:
        tiny_diffusion.build(Path(tmp))
        for child in Path(tmp).iterdir():
            if child.is_dir():
                shutil.copytree(child, home_models / child.name, dirs_exist_ok=True)


# -- driving the window --------------------------------------------------------------------------
def spin(ms: int) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_for(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not reach the expected state")
        spin(30)


def wait_idle(window, timeout_s: float = 180.0) -> None:  # type: ignore[no-untyped-def]
    wait_for(lambda: not window.hub.jobs, timeout_s)


def draw_demo_sketch(canvas) -> None:  # type: ignore[no-untyped-def]
    """A plausible witness sketch: head, hair, brows, eyes, nose, mouth, ears, jaw shading."""
    def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 40,
            p: tuple[float, float] = (0.45, 0.7)) -> list[tuple[float, float, float]]:
        return [(cx + rx * math.cos(a0 + (a1 - a0) * t / n), cy + ry * math.sin(a0 + (a1 - a0) * t / n),
                 p[0] + (p[1] - p[0]) * math.sin(math.pi * t / n)) for t in range(n + 1)]

    cx, cy = 320, 390
    canvas.draw_stroke(arc(cx, cy, 150, 205, math.radians(200), math.radians(340), 60), size=4)  # jaw
    canvas.draw_stroke(arc(cx, cy - 40, 158, 190, math.radians(185), math.radians(355), 60, (0.6, 0.9)), size=5)
    for k in range(14):  # hair strokes
        x0 = cx - 150 + k * 22
        canvas.draw_stroke([(x0, cy - 150 + abs(k - 7) * 6), (x0 + 14, cy - 215 + abs(k - 7) * 4),
                            (x0 + 30, cy - 232 + abs(k - 7) * 3)], size=3)
    for side in (-1, 1):
        ex = cx + side * 62
        canvas.draw_stroke(arc(ex, cy - 78, 42, 12, math.radians(200), math.radians(340), 20, (0.7, 1.0)), size=6)
        canvas.draw_stroke(arc(ex, cy - 40, 30, 11, math.radians(180), math.radians(360), 24), size=3)
        canvas.draw_stroke(arc(ex, cy - 40, 30, 9, math.radians(0), math.radians(180), 24), size=2)
        canvas.draw_stroke(arc(ex, cy - 40, 8, 8, 0, 2 * math.pi, 16, (0.9, 1.0)), size=5)
        canvas.draw_stroke(arc(cx + side * 158, cy - 10, 20, 48, math.radians(-90 if side > 0 else 90),
                               math.radians(90 if side > 0 else 270), 20), size=3)
    canvas.draw_stroke([(cx - 6, cy - 30), (cx - 14, cy + 40), (cx - 28, cy + 58), (cx - 10, cy + 66)], size=3)
    canvas.draw_stroke(arc(cx + 4, cy + 60, 22, 8, math.radians(10), math.radians(170), 14), size=3)
    canvas.draw_stroke(arc(cx, cy + 118, 52, 14, math.radians(10), math.radians(170), 24, (0.5, 0.9)), size=4)
    canvas.draw_stroke(arc(cx, cy + 104, 50, 8, math.radians(190), math.radians(350), 24), size=3)
    for k in range(8):  # stubble shading on the jaw
        canvas.draw_stroke([(cx - 90 + k * 24, cy + 160), (cx - 84 + k * 24, cy + 172)], size=2)


def fake_phone_photo(sheet, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The drawn sheet as a phone photo of paper: grey, unevenly lit, slightly rotated, a little noisy."""
    import cv2
    import numpy as np

    sheet.save(str(path.with_suffix(".png")))
    img = cv2.imread(str(path.with_suffix(".png")), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    h, w = img.shape
    light = np.linspace(0.62, 0.8, w, dtype=np.float32)[None, :] * np.linspace(0.9, 1.0, h, dtype=np.float32)[:, None]
    img = img * light + 25 + np.random.default_rng(3).normal(0, 4, img.shape)
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 3.5, 1.0)
    img = cv2.warpAffine(np.clip(img, 0, 255).astype(np.uint8), rot, (w, h), borderValue=120)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return path


def save(widget, path: Path) -> None:  # type: ignore[no-untyped-def]
    """The widget as the X server shows it (grabWindow), or rendered (grab) on the offscreen platform."""
    from PySide6.QtGui import QGuiApplication

    spin(250)
    screen = QGuiApplication.primaryScreen()
    if QGuiApplication.platformName() == "xcb" and screen is not None:
        top_left = widget.mapToGlobal(widget.rect().topLeft())
        pixmap = screen.grabWindow(0, top_left.x(), top_left.y(), widget.width(), widget.height())
    else:
        pixmap = widget.grab()
    pixmap.save(str(path))
    print(f"saved {path}")


def centre_over(dialog, window) -> None:  # type: ignore[no-untyped-def]
    geo = window.frameGeometry()
    dialog.move(geo.center().x() - dialog.width() // 2, geo.center().y() - dialog.height() // 2)


def take(out: Path, record_only: bool = False) -> None:
    home = Path(tempfile.mkdtemp(prefix="sketchface-shots-"))
    os.environ["SKETCHFACE_HOME"] = str(home)
    os.environ.setdefault("SKETCHFACE_FORCE_CPU", "1")
    photos = seed_photos(home / "incoming" / "booking_photos")
    csv = seed_metadata(photos)
    big = home / "incoming" / "archive_2019"
    seed_photos(big, n_lfw=80, offset=40)

    from sketchface_desktop.app import create_application
    from sketchface_desktop.views.main_window import MainWindow

    tiny_models_stand_in()
    create_application([])
    w = MainWindow(show_guide=False)
    w.setProperty("confirm_close", False)
    w.setGeometry(0, 0, *SCREEN)
    w.show()
    wait_for(lambda: w.started)
    wait_idle(w)
    out.mkdir(parents=True, exist_ok=True)

    guide = w.dialogs.show_guide()
    centre_over(guide, w)
    save(guide, out / "01_first_run_guide.png")
    guide.close()

    from engine import paths

    install_tiny_models(paths.models_dir())
    w.models_changed()
    w.flow.new_case({"case_number": "2026-0417", "title": "Armed robbery, Harbour Street pharmacy",
                     "examiner": "D. Okafor", "witnesses": ["W1 (cashier)", "W2"], "incident_date": "2026-03-14",
                     "notes": "Witness W1 saw the suspect for about 40 s under good light."})
    w.gallery.create_gallery("Booking photos 2020-2025")
    wait_idle(w)
    w.gallery.add_folder(str(photos))
    wait_idle(w)
    w.gallery.import_csv(str(csv))
    wait_idle(w)
    w.gallery.create_gallery("Archive 2019")
    wait_idle(w)

    draw_demo_sketch(w.sketch.canvas)
    w.sketch.canvas.set_guide_visible(True)
    w.tabs.setCurrentWidget(w.results)
    save(w, out / "02_main_sketch.png")

    job = w.gallery.add_folder(str(big))
    w.tabs.setCurrentWidget(w.gallery)
    wait_for(lambda: job.last_progress.total > 0 and job.last_progress.done >= job.last_progress.total * 0.4
             and w.gallery.model.rowCount() > 12)
    save(w, out / "03_jobs_import.png")
    wait_idle(w)

    first_id = next(i.id for i in w.gallery.infos if i.name.startswith("Booking"))
    w.gallery.show_gallery(first_id)
    wait_idle(w)
    w.tabs.setCurrentWidget(w.gallery)
    spin(600)
    save(w, out / "04_gallery.png")

    w.flow.save_sketch(witness="W1 (cashier)")
    wait_idle(w)
    w.tabs.setCurrentWidget(w.results)
    w.results.k.setValue(24)
    w.flow.search_sketch()
    wait_idle(w)
    wait_for(lambda: w.results_model.rowCount() > 0 and w.flow.shown_search_id is not None)
    for i, decision in ((0, "possible"), (2, "excluded"), (3, "possible")):
        w.flow.decide(w.results_model.row(i), decision, "similar jaw line" if decision == "possible" else "")
        wait_idle(w)
    w.results.view.setCurrentIndex(w.results_model.index(1))
    spin(800)
    save(w, out / "05_results.png")

    sys.path.insert(0, str(ROOT / "tools"))
    from screenshots_record import take_record

    take_record(w, out, home, save, centre_over, wait_idle, wait_for, spin)
    if record_only:
        w.close()
        shutil.rmtree(home, ignore_errors=True)
        return

    dialog = w.dialogs.open_compare(w.results_model.row(0))
    wait_idle(w)
    dialog.overlay_button.setChecked(True)
    dialog.opacity.setValue(55)
    centre_over(dialog, w)
    save(dialog, out / "06_compare.png")
    dialog.close()

    settings = w.dialogs.open_settings("models")
    wait_idle(w)
    settings.models_page.table.selectRow(1)
    centre_over(settings, w)
    save(settings, out / "07_settings_models.png")
    settings.tabs.setCurrentIndex(0)
    save(settings, out / "08_settings_general.png")
    settings.close()

    from sketchface_desktop.views.case_dialogs import CaseDetailsDialog

    details = CaseDetailsDialog(w, w.cases.info)
    details.show()
    centre_over(details, w)
    save(details, out / "09_case_details.png")
    details.close()

    from PySide6.QtCore import QRectF

    from sketchface_desktop.views.canvas.scan_import import ScanImportDialog, load_scan

    scan = fake_phone_photo(w.sketch.canvas.image, home / "scan.jpg")
    scan_dialog = ScanImportDialog(load_scan(str(scan)), w)
    scan_dialog.angle.setValue(-35)
    scan_dialog.black.setValue(70)
    scan_dialog.white.setValue(175)
    scan_dialog.preview.crop = QRectF(0.12, 0.1, 0.76, 0.8)
    scan_dialog.preview.update()
    scan_dialog.show()
    centre_over(scan_dialog, w)
    save(scan_dialog, out / "10_scan_import.png")
    scan_dialog.close()

    install_tiny_generation_models(paths.models_dir())
    panel = w.reconstruct
    w.tabs.setCurrentWidget(panel)
    wait_idle(w)
    w.reconstruct_flow.describe()
    wait_idle(w)
    panel.candidates.setValue(5)
    panel.steps.setValue(3)
    panel.image_size.setValue(128)
    panel.seed.setValue(1207)
    w.reconstruct_flow.generate(allow_cpu=True)  # the CPU refusal dialog is skipped: the user insisted
    wait_idle(w)
    panel.strip.setCurrentRow(0)
    save(w, out / "11_reconstruct.png")

    w.close()
    shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    record_only = "--record-only" in args
    args = [a for a in args if a != "--record-only"]
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__)
        return 2
    _reexec_under_xvfb()
    take(Path(args[0]).resolve(), record_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
