"""The one worker mechanism: fixed signals, results in the GUI thread, serial engine lane, silent cancel, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from engine.errors import BadImage
from engine.progress import ProgressEvent
from sketchface_desktop.views.jobs_panel import JobsPanel, eta_seconds, format_duration
from sketchface_desktop.workers import JobHub, JobState
from tests.desktop.conftest import wait_idle, wait_job

pytestmark = pytest.mark.gui


@pytest.fixture
def hub(qtbot):  # type: ignore[no-untyped-def]
    h = JobHub()
    yield h
    assert h.shutdown(5000)


def test_result_and_progress_arrive_in_the_gui_thread(qtbot, hub: JobHub) -> None:
    gui = threading.get_ident()
    seen: list[tuple[str, bool]] = []

    def work(progress, cancel):  # type: ignore[no-untyped-def]
        progress(ProgressEvent(1, 1, "half"))
        return threading.get_ident()

    job = hub.submit("t", work, on_result=lambda v: seen.append(("result", threading.get_ident() == gui and v != gui)))
    job.progress.connect(lambda d, t, m: seen.append(("progress", threading.get_ident() == gui)))
    wait_job(qtbot, hub, job)
    assert job.state is JobState.DONE
    assert ("result", True) in seen


def test_engine_lane_runs_one_job_at_a_time_in_order(qtbot, hub: JobHub) -> None:
    running, peak, order = [0], [0], []
    lock = threading.Lock()

    def make(i: int):  # type: ignore[no-untyped-def]
        def work(progress, cancel):  # type: ignore[no-untyped-def]
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.02)
            order.append(i)
            with lock:
                running[0] -= 1
        return work

    for i in range(5):
        hub.submit(f"job {i}", make(i))
    wait_idle(qtbot, hub)
    assert peak[0] == 1 and order == [0, 1, 2, 3, 4]


def test_engine_error_goes_to_job_failed_and_cancel_is_silent(qtbot, hub: JobHub) -> None:
    failures: list[BaseException] = []
    hub.job_failed.connect(lambda job, exc: failures.append(exc))

    def bad(progress, cancel):  # type: ignore[no-untyped-def]
        raise BadImage("photo.jpg is truncated.")

    def slow(progress, cancel):  # type: ignore[no-untyped-def]
        for _ in range(500):
            cancel.raise_if_cancelled()
            time.sleep(0.01)

    failing = hub.submit("bad", bad)
    cancelled = hub.submit("slow", slow)
    qtbot.waitUntil(lambda: cancelled.state is JobState.RUNNING)
    cancelled.cancel()
    wait_idle(qtbot, hub)
    assert failing.state is JobState.FAILED and cancelled.state is JobState.CANCELLED
    assert [str(e) for e in failures] == ["photo.jpg is truncated."]


def test_queued_job_cancelled_before_it_starts_never_runs(qtbot, hub: JobHub) -> None:
    ran: list[str] = []
    gate = threading.Event()
    hub.submit("blocker", lambda p, c: gate.wait(5))
    queued = hub.submit("queued", lambda p, c: ran.append("ran"))
    queued.cancel()
    gate.set()
    wait_idle(qtbot, hub)
    assert ran == [] and queued.state is JobState.CANCELLED


def test_jobs_panel_shows_progress_eta_and_cancels(qtbot, hub: JobHub) -> None:
    panel = JobsPanel(hub)
    qtbot.addWidget(panel)

    def work(progress, cancel):  # type: ignore[no-untyped-def]
        for i in range(1, 400):
            cancel.raise_if_cancelled()
            progress(ProgressEvent(i, 400, f"file {i}"))
            time.sleep(0.01)

    job = hub.submit("Adding photos", work)
    row = panel.row_for(job)
    assert row is not None
    qtbot.waitUntil(lambda: row.bar.value() > 20 and "left" in row.eta.text(), timeout=10_000)
    assert "of 400" in row.full_message
    row.cancel_button.click()
    wait_idle(qtbot, hub)
    assert job.state is JobState.CANCELLED and "Cancelled" in row.full_message
    panel.clear_finished()
    assert panel.rows == []


def test_eta_and_duration_formatting() -> None:
    assert eta_seconds(0, 10, 5.0) is None and eta_seconds(5, 0, 5.0) is None
    assert eta_seconds(25, 100, 10.0) == pytest.approx(30.0)
    assert format_duration(42) == "42 s" and format_duration(185) == "3 min 05 s"
    assert format_duration(4320) == "1 h 12 min"


def test_shutdown_stops_running_work(qtbot) -> None:
    hub = JobHub()
    hub.submit("forever", lambda p, c: [c.raise_if_cancelled() or time.sleep(0.01) for _ in range(10_000)])
    time.sleep(0.05)
    started = time.monotonic()
    assert hub.shutdown(5000)
    assert time.monotonic() - started < 2.0
    with pytest.raises(RuntimeError):
        hub.submit("late", lambda p, c: None)
