"""Desktop fixtures: a shown MainWindow with its own job hub, photo folders, and waiting helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest

from tests.fixtures.photos_basic import textured_image


def wait_idle(qtbot, hub, timeout: int = 60_000) -> None:  # type: ignore[no-untyped-def]
    """Wait until every job of the hub has finished and its result handlers have run in the GUI thread."""
    qtbot.waitUntil(lambda: not hub.jobs, timeout=timeout)


def wait_job(qtbot, hub, job, timeout: int = 60_000) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``job`` is done and its handlers ran (the hub forgets a job after its finished handlers)."""
    assert job is not None
    qtbot.waitUntil(lambda: job.id not in hub.jobs, timeout=timeout)


@pytest.fixture(autouse=True)
def no_blocking_quit_question(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An offscreen modal "quit while jobs run?" question would block a test run forever: answer Yes.

    The questions asked are recorded, so a test can still assert that one was asked.
    """
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def question(parent, title, text, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


@pytest.fixture
def make_photos(tmp_path: Path) -> Callable[..., Path]:
    """Write ``n`` small textured JPEGs (the tiny detector finds faces in them) into a new folder."""
    counter = iter(range(1000))

    def make(n: int, size: tuple[int, int] = (96, 128), name: str | None = None, seed: int = 0) -> Path:
        folder = tmp_path / (name or f"photos{next(counter)}")
        folder.mkdir()
        for i in range(n):
            cv2.imwrite(str(folder / f"person_{i:04d}.jpg"), textured_image(seed + i, size))
        return folder

    return make


@pytest.fixture
def window(qtbot) -> Iterator:  # type: ignore[no-untyped-def]
    """The real main window, shown, with the first-run guide off (tests that want it open it)."""
    from sketchface_desktop.app import create_application
    from sketchface_desktop.views.main_window import MainWindow

    create_application([])
    w = MainWindow(show_guide=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.started)  # the deferred start-up work (device, models, galleries) began
    wait_idle(qtbot, w.hub)
    yield w
    w.setProperty("confirm_close", False)
    w.close()
    w.hub.shutdown()


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the tiny detector and recognizer (the desktop tests need no sketch encoder or diffusion models,
    and building those costs most of a session's set-up); without an encoder, sketch search is the baseline."""
    from tests.fixtures import tiny_models

    out = tmp_path_factory.mktemp("tiny_face_models")
    return tiny_models.build(out, extras=False)
