"""The GUI thread keeps serving events while a 500-photo import runs (no stall over 100 ms).

A repeating 5 ms QTimer on the GUI thread measures event-loop latency: the gap between two ticks is
how long the loop could not run. On a shared machine part of that gap is time the kernel kept the
ready GUI thread waiting for a CPU that other processes were using; Linux reports that wait per
thread (``/proc/self/task/<tid>/schedstat``, run-queue delay), and it is subtracted, because no
design of this program can remove it. What remains is what the program is answerable for: its own
GUI work and the interpreter lock held by its workers. Elsewhere the raw gap is used.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from sketchface_desktop.workers import JobState
from tests.desktop.conftest import wait_idle, wait_job

pytestmark = pytest.mark.gui

PROBE_MS = 5
MAX_STALL_S = 0.100


class LatencyProbe:
    """Ticks on the GUI thread; records (wall gap, OS run-queue delay of the GUI thread) per tick."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        stat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")
        self.schedstat = stat if stat.exists() else None
        self.samples: list[tuple[float, float]] = []
        self._last = (0.0, 0.0)

    def _run_queue_delay(self) -> float:
        return int(self.schedstat.read_text().split()[1]) / 1e9 if self.schedstat else 0.0

    def start(self) -> None:
        self._last = (time.perf_counter(), self._run_queue_delay())
        self.timer.start()

    def _tick(self) -> None:
        now = (time.perf_counter(), self._run_queue_delay())
        self.samples.append((now[0] - self._last[0], now[1] - self._last[1]))
        self._last = now

    def stop(self) -> None:
        self.timer.stop()

    def worst_stall(self) -> float:
        """The longest gap the program is answerable for (wall gap minus the OS run-queue delay)."""
        return max(gap - min(queued, gap) for gap, queued in self.samples)

    def report(self) -> str:
        worst = sorted(self.samples, key=lambda s: s[0] - s[1])[-5:]
        return ", ".join(f"{g * 1000:.0f} ms gap ({q * 1000:.0f} ms waiting for a CPU)" for g, q in worst)


def test_gui_never_stalls_during_a_500_photo_import(qtbot, window, installed_models, make_photos) -> None:
    w = window
    folder = make_photos(500, size=(72, 96))
    wait_job(qtbot, w.hub, w.gallery.create_gallery("Large"))
    wait_idle(qtbot, w.hub)
    w.tabs.setCurrentWidget(w.gallery)  # the live-refreshing gallery grid and the jobs panel are on screen
    probe = LatencyProbe()
    probe.start()
    job = w.gallery.add_folder(str(folder))
    wait_idle(qtbot, w.hub, timeout=170_000)
    probe.stop()
    assert job.state is JobState.DONE and job.value.added == 500
    assert w.gallery.model.rowCount() == 500
    assert len(probe.samples) > 100, "the probe must have run throughout the import"
    print(f"worst stall {probe.worst_stall() * 1000:.0f} ms; {probe.report()}")  # shown with -s
    assert probe.worst_stall() < MAX_STALL_S, f"GUI thread stalled: {probe.report()}"
