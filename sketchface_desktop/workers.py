"""The one background-work mechanism of the workstation: jobs with a fixed signal set, two lanes.

* the **engine lane**: one long-lived thread runs GPU and index work one job at a time, so two
  model sessions never fight over memory and an index is never written by two jobs at once;
* the **case lane**: one thread for case records (cheap SQLite writes that must not wait behind a
  twenty-minute import, and must never share the case's connection between two threads at once);
* the **io lane**: a small thread pool for cheap reads (thumbnails, file checks, image decoding).

Every job is a plain callable ``fn(progress, cancel)`` taking the engine's own progress callback and
:class:`engine.progress.CancelToken`, so engine functions are passed straight through. The hub keeps
a Python reference to every job and thread until it is done (a collected running QThread takes the
process down) and quits and waits for them on shutdown.
"""

from __future__ import annotations

import itertools
import logging
import queue
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal

from engine.errors import Cancelled
from engine.progress import CancelToken, ProgressEvent

log = logging.getLogger(__name__)

JobFn = Callable[[Callable[[ProgressEvent], None], CancelToken], Any]
_ids = itertools.count(1)
SERIAL_LANES = ("engine", "case")
PROGRESS_INTERVAL_S = 0.05  # at most 20 progress signals a second per job, whatever the engine sends


class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(QObject):
    """A unit of background work; its signals are delivered in the GUI thread.

    Signals:
        started(): the job began running.
        progress(int, int, str): steps done, total steps (0 when unknown) and a short message.
        result(object): the callable's return value (not sent on error or cancellation).
        error(object): the exception raised (never :class:`Cancelled`: cancelling is silent).
        finished(): always the last signal, whatever the outcome; ``state`` says which.
    """

    started = Signal()
    progress = Signal(int, int, str)
    result = Signal(object)
    error = Signal(object)
    finished = Signal()

    def __init__(self, title: str, fn: JobFn, *, lane: str = "engine", visible: bool = True,
                 cancellable: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.id = next(_ids)
        self.title = title
        self.fn = fn
        self.lane = lane
        self.visible = visible
        self.cancellable = cancellable
        self.token = CancelToken()
        self.state = JobState.QUEUED
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.last_progress = ProgressEvent(0, 0, "")
        self.exception: BaseException | None = None
        self.value: Any = None
        self._last_emit = 0.0

    def cancel(self) -> None:
        """Ask the job to stop; a queued job never starts, a running one stops at its next check."""
        self.token.cancel()

    @property
    def active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)

    def _report(self, event: ProgressEvent) -> None:
        """Engine progress callback: remembered always, signalled at a rate the GUI can absorb."""
        self.last_progress = event
        now = time.monotonic()
        if now - self._last_emit >= PROGRESS_INTERVAL_S or (event.total and event.done >= event.total):
            self._last_emit = now
            self.progress.emit(int(event.done), int(event.total), str(event.message))

    def run(self) -> None:
        """Run in a worker thread; emits the signals (queued to the GUI thread's receivers)."""
        if self.token.cancelled:
            self.state = JobState.CANCELLED
            self.finished.emit()
            return
        self.state = JobState.RUNNING
        self.started_at = time.monotonic()
        self.started.emit()
        try:
            value = self.fn(self._report, self.token)
        except Cancelled:
            self.state = JobState.CANCELLED
        except BaseException as exc:  # every failure must reach the GUI, never kill the worker thread
            self.exception = exc
            self.state = JobState.FAILED
            if not getattr(exc, "message", None):
                log.exception("Job %r failed", self.title)
            self.error.emit(exc)
        else:
            self.value = value
            self.state = JobState.DONE
            self.result.emit(value)
        finally:
            self.ended_at = time.monotonic()
            self.finished.emit()


class SerialThread(QThread):
    """A long-lived thread that runs its lane's jobs one at a time, in submission order.

    Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self.current: Job | None = None

    def put(self, job: Job | None) -> None:
        self._queue.put(job)

    def run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self.current = job
            try:
                job.run()
            finally:
                self.current = None


class _Runnable(QRunnable):
    """Adapter that runs a :class:`Job` on a QThreadPool thread.

    Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        self.job.run()


class JobHub(QObject):
    """Owns the engine thread, the io pool and every job until it has finished.

    Signals:
        job_added(object): a visible job was submitted (the jobs panel shows it).
        job_failed(object, object): a job raised (job, exception); the window shows the error.
        idle_changed(bool): True when no job is queued or running any more.
    """

    job_added = Signal(object)
    job_failed = Signal(object, object)
    idle_changed = Signal(bool)

    def __init__(self, io_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.serial: dict[str, SerialThread] = {name: SerialThread(name) for name in SERIAL_LANES}
        for thread in self.serial.values():
            thread.start()
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(max(1, io_threads))
        self.pool.setObjectName("io")
        self.jobs: dict[int, Job] = {}
        self._closed = False

    def submit(self, title: str, fn: JobFn, *, lane: str = "engine", visible: bool = True,
               cancellable: bool = True, on_result: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None,
               on_finished: Callable[[Job], None] | None = None) -> Job:
        """Queue ``fn(progress, cancel)`` on a lane and return its :class:`Job`.

        Args:
            title: what the jobs panel calls it ("Adding 512 photos to Mugshots 2024").
            fn: the work; raises an EngineError with a message a person can act on.
            lane: "engine" (one at a time: GPU, models, index), "case" (one at a time: case records)
                or "io" (pool: cheap reads).
            visible: shown in the jobs panel.
            on_result, on_error, on_finished: connected before the job can start, so none is missed.
                Without ``on_error`` the failure goes to ``job_failed`` (the window's error dialog).
        """
        if self._closed:
            raise RuntimeError("The job hub has been shut down.")
        job = Job(title, fn, lane=lane, visible=visible, cancellable=cancellable)
        self.jobs[job.id] = job
        if on_result is not None:
            job.result.connect(on_result)
        if on_error is not None:
            job.error.connect(on_error)
        else:
            job.error.connect(lambda exc, j=job: self.job_failed.emit(j, exc))
        job.finished.connect(lambda j=job: self._done(j, on_finished))
        was_idle = len(self.jobs) == 1
        if visible:
            self.job_added.emit(job)
        if was_idle:
            self.idle_changed.emit(False)
        if lane in self.serial:
            self.serial[lane].put(job)
        elif lane == "io":
            self.pool.start(_Runnable(job))
        else:
            raise ValueError(f"unknown lane {lane!r}")
        return job

    def start_process(self, job: Job, on_result: Callable[[Any], None] | None = None) -> Job:
        """Adopt a job that drives its own subprocess (e.g. training) and start it.

        It gets the same treatment as a lane job: listed in the jobs panel, failures to ``job_failed``,
        cancelled and waited for at shutdown.
        """
        if self._closed:
            raise RuntimeError("The job hub has been shut down.")
        self.jobs[job.id] = job
        if on_result is not None:
            job.result.connect(on_result)
        job.error.connect(lambda exc, j=job: self.job_failed.emit(j, exc))
        job.finished.connect(lambda j=job: self._done(j, None))
        if len(self.jobs) == 1:
            self.idle_changed.emit(False)
        if job.visible:
            self.job_added.emit(job)
        job.start()  # type: ignore[attr-defined]
        return job

    def _done(self, job: Job, on_finished: Callable[[Job], None] | None) -> None:
        try:
            if on_finished is not None:
                on_finished(job)
        finally:
            self.jobs.pop(job.id, None)
            if not self.jobs:
                self.idle_changed.emit(True)

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` ran: nothing more can be submitted."""
        return self._closed

    def active_jobs(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.active]

    def cancel_all(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything, stop the engine thread and drain the pool; True if all stopped in time."""
        if self._closed:
            return True
        self._closed = True
        processes = [j for j in self.jobs.values() if hasattr(j, "wait") and j.active]
        self.cancel_all()
        for job in processes:
            if not job.wait(timeout_ms):  # type: ignore[attr-defined]
                job.process.kill()  # type: ignore[attr-defined]
        for thread in self.serial.values():
            thread.put(None)
        stopped = all(thread.wait(timeout_ms) for thread in self.serial.values())
        self.pool.clear()
        drained = self.pool.waitForDone(timeout_ms)
        if not (stopped and drained):
            log.warning("Background work did not stop within %d ms", timeout_ms)
        return bool(stopped and drained)
