"""Training runs as a subprocess read through QProcess: progress, result, crash and cancel never hurt the GUI."""

from __future__ import annotations

import signal
import sys

import pytest

from sketchface_desktop.ops.training import PROGRESS_SCALE, TrainingFailed, TrainingJob, train_command
from sketchface_desktop.views.jobs_panel import JobsPanel
from sketchface_desktop.workers import JobHub, JobState
from tests.desktop.conftest import wait_job

pytestmark = pytest.mark.gui

FAKE_TRAINER = r"""
import json, sys, time
def emit(**e): print(json.dumps(e), flush=True)
mode = sys.argv[1]
print("loading data...", file=sys.stderr, flush=True)
print("a stray line that is not JSON", flush=True)
try:
    for step in range(1, 6):
        emit(event="step", step=step, epoch=0, progress=step / 5, loss=1.0 / step)
        time.sleep(0.6 if mode == "slow" else 0.02)
        if mode == "crash" and step == 3:
            print("RuntimeError: CUDA out of memory", file=sys.stderr, flush=True)
            sys.exit(3)
    emit(event="eval", step=5, recall_at_10=0.5)
    emit(event="done", best_step=5, out_dir="runs/x")
except KeyboardInterrupt:
    emit(event="cancelled", message="interrupted")
    sys.exit(130)
"""


@pytest.fixture
def hub(qtbot):  # type: ignore[no-untyped-def]
    h = JobHub()
    yield h
    h.shutdown(5000)


def fake(mode: str) -> TrainingJob:
    return TrainingJob(f"fake training ({mode})", [sys.executable, "-c", FAKE_TRAINER, mode])


def test_progress_events_become_job_signals_and_result(qtbot, hub: JobHub) -> None:
    panel = JobsPanel(hub)
    qtbot.addWidget(panel)
    seen: list[int] = []
    job = fake("ok")
    job.progress.connect(lambda done, total, msg: seen.append(done))
    hub.start_process(job)
    assert panel.row_for(job) is not None, "a training run is listed with the other jobs"
    wait_job(qtbot, hub, job, timeout=30_000)
    assert job.state is JobState.DONE and job.value["best_step"] == 5
    assert seen and seen[-1] == PROGRESS_SCALE
    assert [e["event"] for e in job.events][-2:] == ["eval", "done"]


def test_a_crashing_trainer_is_an_error_not_a_crash(qtbot, hub: JobHub) -> None:
    failures: list[BaseException] = []
    hub.job_failed.connect(lambda j, e: failures.append(e))
    job = hub.start_process(fake("crash"))
    wait_job(qtbot, hub, job, timeout=30_000)
    assert job.state is JobState.FAILED
    assert isinstance(failures[0], TrainingFailed) and "code 3" in failures[0].message
    assert "CUDA out of memory" in failures[0].hint


def test_cancel_interrupts_the_trainer_silently(qtbot, hub: JobHub) -> None:
    failures: list[BaseException] = []
    hub.job_failed.connect(lambda j, e: failures.append(e))
    job = hub.start_process(fake("slow"))
    qtbot.waitUntil(lambda: job.last_progress.done > 0, timeout=20_000)
    job.cancel()
    wait_job(qtbot, hub, job, timeout=30_000)
    assert job.state is JobState.CANCELLED and failures == []
    assert job.events[-1]["event"] == "cancelled"


def test_shutdown_stops_a_running_trainer(qtbot) -> None:
    hub = JobHub()
    job = hub.start_process(fake("slow"))
    qtbot.waitUntil(lambda: job.last_progress.done > 0, timeout=20_000)
    assert hub.shutdown(10_000)
    assert job.process.state() == job.process.ProcessState.NotRunning


def test_train_command_runs_the_trainer_module() -> None:
    argv = train_command("cfg.toml", ['run.out_dir="/tmp/r"'])
    assert argv[1:4] == ["-m", "trainer", "train"] and argv[-2:] == ["--set", 'run.out_dir="/tmp/r"']


def test_the_dataset_check_is_an_op_in_the_io_lane(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The Train action hands its dataset doctor to the runner as an op; it never submits work itself."""
    from sketchface_desktop.views import training_run
    from tests.desktop.fakes import InlineRunner

    config = tmp_path / "train.toml"
    config.write_text(f'[data]\nroot = "{(tmp_path / "ds").as_posix()}"\n[model]\npretrained = "none"\n', "utf-8")
    runner = InlineRunner(execute=False)
    started: list[object] = []
    monkeypatch.setattr(runner, "start_process", started.append, raising=False)
    job = training_run.start_training(runner, None, str(config))
    assert runner.submitted == [("Checking the training dataset", "io")]
    assert job is runner.jobs[0] and started == []  # training waits for the report and the examiner's yes


def test_cancel_works_when_the_window_was_started_with_sigint_ignored(qtbot, hub: JobHub) -> None:
    """``nohup sketchface &`` or a launcher that ignores SIGINT: the trainer must not inherit that."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        job = hub.start_process(fake("slow"))
    finally:
        signal.signal(signal.SIGINT, previous)
    qtbot.waitUntil(lambda: job.last_progress.done > 0, timeout=20_000)
    job.cancel()
    wait_job(qtbot, hub, job, timeout=30_000)
    assert job.state is JobState.CANCELLED
    assert job.events[-1]["event"] == "cancelled", "stopped by its own SIGINT handling, not by the later kill"
