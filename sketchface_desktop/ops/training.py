"""Training operations: the dataset doctor before a run starts, and the run itself as a subprocess job.

Why a subprocess: training takes hours, loads torch and a GPU, and may crash (out of memory, a bad
batch); none of that may take the workstation down or hold the interpreter lock the GUI needs. The
trainer (``python -m trainer train``) writes one JSON event per stdout line (``step`` with
``progress``, ``eval``, ``checkpoint``, and last ``done``, ``error`` or ``cancelled``);
:class:`TrainingJob` reads them through QProcess and turns them into the same signals as every other
job, so the jobs panel shows progress, ETA and a cancel button for it like for an import. Cancel
sends SIGINT (the trainer stops at a step boundary and reports ``cancelled``; its last.pt lets a
later run resume), then kills it if it has not stopped after a grace period. The hub adopts the job
with ``start_process``; only the pre-flight dataset check is in-process work, and it runs here so
that no widget submits work itself.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, QProcessEnvironment, QTimer

from engine import models, paths
from engine.errors import EngineError
from engine.progress import ProgressEvent
from sketchface_desktop.ops.base import Op
from sketchface_desktop.workers import Job, JobState

log = logging.getLogger(__name__)

PROGRESS_SCALE = 1000  # "progress" (0..1) is reported as done/1000
KILL_AFTER_MS = 15_000


class TrainingFailed(EngineError):
    """The training process reported an error or ended without reporting success."""


def train_command(config: str | None, overrides: list[str] | None = None) -> list[str]:
    """The argv of a training run: this interpreter, ``-m trainer train``, config and overrides."""
    argv = [sys.executable, "-m", "trainer", "train"]
    if config:
        argv += ["--config", str(config)]
    for item in overrides or []:
        argv += ["--set", item]
    return argv


class TrainingJob(Job):
    """A job driven by a QProcess instead of a worker thread; same signals and states as :class:`Job`.

    Signals: those of :class:`Job` (started, progress, result, error, finished); ``result`` carries the
    trainer's final ``done`` event, ``error`` a :class:`TrainingFailed` with the trainer's message.
    Every event is also kept in ``events`` (the last 2,000).
    """

    def __init__(self, title: str, argv: list[str], cwd: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        super().__init__(title, lambda _p, _c: None, lane="process")
        self.argv = list(argv)
        self.events: list[dict[str, Any]] = []
        self.stderr_tail = ""
        self._buffer = b""
        self._outcome: dict[str, Any] | None = None
        self.process = QProcess(self)
        self.process.setProgram(self.argv[0])
        self.process.setArguments(self.argv[1:])
        if cwd:
            self.process.setWorkingDirectory(cwd)
        penv = QProcessEnvironment.systemEnvironment()
        for key, value in {"PYTHONUNBUFFERED": "1", **(env or {})}.items():
            penv.insert(key, value)
        self.process.setProcessEnvironment(penv)
        if os.name == "posix":
            # Cancel is SIGINT: a window started with SIGINT ignored (nohup, a background job, some
            # launchers) would pass that on to the trainer, which would then run on until the kill.
            self.process.setUnixProcessParameters(QProcess.UnixProcessFlag.ResetSignalHandlers)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._process_finished)
        self.process.errorOccurred.connect(self._process_error)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.process.kill)

    def run(self) -> None:  # pragma: no cover - a process job is started, never run in a thread
        raise RuntimeError("TrainingJob runs as a subprocess: call start()")

    def start(self) -> None:
        self.state = JobState.RUNNING
        self.started_at = time.monotonic()
        self.process.start()
        self.started.emit()

    def cancel(self) -> None:
        """Ask the trainer to stop (SIGINT, then a kill after a grace period)."""
        super().cancel()
        if self.process.state() == QProcess.ProcessState.NotRunning:
            return
        pid = int(self.process.processId())
        if os.name == "posix" and pid > 0:
            os.kill(pid, signal.SIGINT)
        else:
            self.process.terminate()
        self._kill_timer.start(KILL_AFTER_MS)

    def wait(self, timeout_ms: int) -> bool:
        """Block until the process has ended (shutdown only)."""
        return bool(self.process.waitForFinished(timeout_ms))

    # -- reading events ------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            self._event_line(raw.decode("utf-8", "replace").strip())

    def _event_line(self, line: str) -> None:
        if not line:
            return
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            log.info("trainer: %s", line)  # stray output: kept in the log, never fatal
            return
        if not isinstance(event, dict):
            return
        self.events = (self.events + [event])[-2000:]
        kind = event.get("event")
        if kind == "step" and isinstance(event.get("progress"), int | float):
            done = int(round(float(event["progress"]) * PROGRESS_SCALE))
            loss = event.get("loss")
            message = f"step {event.get('step')}" + (f" · loss {loss:.4f}" if isinstance(loss, float) else "")
            self._report_progress(done, message)
        elif kind == "eval":
            shown = {k: v for k, v in event.items() if isinstance(v, float)}
            self._report_progress(self.last_progress.done, "eval " + ", ".join(
                f"{k} {v:.3f}" for k, v in list(shown.items())[:3]))
        elif kind in ("done", "error", "cancelled"):
            self._outcome = event

    def _report_progress(self, done: int, message: str) -> None:
        self._report(ProgressEvent(done, PROGRESS_SCALE, message))

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        self.stderr_tail = (self.stderr_tail + text)[-4000:]

    def _process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._finish_failed(f"The trainer could not be started ({self.process.errorString()}).")

    def _process_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._read_stdout()
        self._event_line(self._buffer.decode("utf-8", "replace").strip())
        outcome = self._outcome or {}
        if outcome.get("event") == "done" and code == 0:
            self.state, self.value, self.ended_at = JobState.DONE, outcome, time.monotonic()
            self.result.emit(outcome)
            self.finished.emit()
        elif self.token.cancelled or outcome.get("event") == "cancelled":
            self.state, self.ended_at = JobState.CANCELLED, time.monotonic()
            self.finished.emit()
        else:
            reason = outcome.get("message") or (
                "the process crashed" if status == QProcess.ExitStatus.CrashExit else f"it exited with code {code}")
            self._finish_failed(f"Training stopped: {reason}.")

    def _finish_failed(self, message: str) -> None:
        if self.state is not JobState.RUNNING and self.state is not JobState.QUEUED:
            return
        tail = self.stderr_tail.strip().splitlines()[-3:]
        exc = TrainingFailed(message, hint=("Last lines from the trainer: " + " | ".join(tail)) if tail else
                             "See the run folder's log for details.")
        self.exception, self.state, self.ended_at = exc, JobState.FAILED, time.monotonic()
        self.error.emit(exc)
        self.finished.emit()


def default_run_dir() -> Path:
    """A new, dated run folder under the data folder's ``training``."""
    return paths.data_dir() / "training" / time.strftime("run-%Y%m%d-%H%M%S")


def pretrained_problem(cfg: Any) -> str | None:
    """Why the run would stop at once for want of its pretrained tower (None: the weights are there).

    The Train action checks this before anything else: the default config trains from the managed
    OpenCLIP checkpoint, and a run without it is refused by the trainer anyway.
    """
    source = cfg.model.pretrained
    if source not in models.MODELS:
        return None  # a file, a tag or "none": the trainer checks those itself
    missing = models.missing_files(source)
    if not missing:
        return None
    spec = models.get_spec(source)
    return (f"Training starts from {spec.title}, which is not installed.\n\nImport it in Settings > Models, or "
            f"run 'sketchface models download {source}' on a machine with internet ({spec.source}).")


def read_config(path: str) -> tuple[Any | None, str]:
    """The training config at ``path``, or None and why it cannot be read (the engine's wording).

    The Train action shows the reason instead of a traceback; the view never sees the engine's errors.
    """
    from trainer.config import load_config  # the trainer's modules load only when training is asked for

    try:
        cfg = load_config(path)
    except EngineError as exc:
        return None, str(exc)
    return cfg, ""


def doctor_summary(report: dict[str, Any]) -> tuple[str, bool]:
    """The dataset doctor's report as the Train dialog shows it, and whether training may start."""
    from trainer.doctor import format_report

    ok = report.get("verdict") != "unusable"
    head = ("The dataset can be used for training." if report.get("verdict") == "ok" else
            "The dataset can be used, with the notes below." if ok else
            "Training would stop on this dataset: fix the problems below first.")
    return f"{head}\n\n{format_report(report)}", ok


def check_dataset(cfg: Any) -> Op[dict[str, Any]]:
    """Read the training dataset the config names and report whether a run could use it (io lane)."""
    def work(_progress: Any, _cancel: Any) -> dict[str, Any]:
        from trainer.doctor import check_dataset as doctor

        return dict(doctor(cfg))

    return Op("Checking the training dataset", work, lane="io")
