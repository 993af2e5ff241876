"""JobsPanel: every background job with its progress, time left and a cancel button.

An examiner starting a 20,000-photo import must see that it is moving, how long it will take and how
to stop it; a failed or cancelled job stays listed (with why) until cleared, so nothing ends unseen.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.views import assets
from sketchface_desktop.views.ui import button, label, plain
from sketchface_desktop.workers import Job, JobHub, JobState

MAX_FINISHED_ROWS = 30


def format_duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 12 min': short enough for a status line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Time left at the average rate so far; None while unknown (no total or nothing done yet)."""
    if total <= 0 or done <= 0 or elapsed <= 0 or done >= total:
        return None
    return elapsed * (total - done) / done


class JobRow(QFrame):
    """One job in the panel: title, message, progress bar, elapsed/ETA and cancel.

    Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, job: Job, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.setProperty("role", "jobrow")
        self.setObjectName(f"JobRow{job.id}")
        self.title = plain(QLabel(job.title))
        self.title.setStyleSheet("font-weight: 600;")
        self.full_message = "Waiting for the engine…"
        self.message = label(self.full_message, "subtle")
        self.eta = label("", "subtle")
        self.eta.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.bar.setRange(0, 0)
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(assets.icon("cancel"))
        self.cancel_button.setToolTip("Cancel this job")
        self.cancel_button.setEnabled(job.cancellable)
        self.cancel_button.clicked.connect(self._cancel)
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.message.setMinimumWidth(80)
        top = QHBoxLayout()
        top.setSpacing(10)
        top.addWidget(self.title)
        top.addWidget(self.message, 1)
        top.addWidget(self.eta)
        top.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 6, 6)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        job.started.connect(self._started)
        job.progress.connect(self._progress)
        job.error.connect(self._failed)
        job.finished.connect(self._finished)

    def set_message(self, text: str) -> None:
        """Show ``text`` elided in the middle (paths keep their file name); the tooltip has all of it."""
        self.full_message = text
        self.message.setToolTip(text)
        width = max(80, self.message.width())
        self.message.setText(self.message.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, width))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.set_message(self.full_message)

    def _cancel(self) -> None:
        self.job.cancel()
        self.cancel_button.setEnabled(False)
        self.set_message("Cancelling…")

    def _started(self) -> None:
        self.set_message("Running…")

    def _progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        text = f"{done:,} of {total:,}" if total > 0 else (f"{done:,}" if done else "")
        self.set_message(" · ".join(p for p in (text, message) if p))
        self.tick()

    def tick(self) -> None:
        """Refresh elapsed time and ETA (called on progress and once a second)."""
        if self.job.state is not JobState.RUNNING or self.job.started_at is None:
            return
        elapsed = time.monotonic() - self.job.started_at
        ev = self.job.last_progress
        left = eta_seconds(ev.done, ev.total, elapsed)
        self.eta.setText(f"{format_duration(elapsed)} elapsed" +
                         (f" · about {format_duration(left)} left" if left is not None else ""))

    def _failed(self, exc: object) -> None:
        self.set_message(f"Failed: {getattr(exc, 'message', None) or exc}")
        self.message.setProperty("role", "badge-missing")
        self.message.style().polish(self.message)

    def _finished(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.hide()
        state = self.job.state
        elapsed = (self.job.ended_at or 0) - (self.job.started_at or self.job.ended_at or 0)
        if state is JobState.DONE:
            self.bar.setRange(0, 1)
            self.bar.setValue(1)
            self.eta.setText(f"done in {format_duration(elapsed)}")
            if self.full_message in ("", "Running…", "Waiting for the engine…"):
                self.set_message("Finished.")
        elif state is JobState.CANCELLED:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.eta.setText("cancelled")
            self.set_message("Cancelled; the work done so far is kept.")
        elif state is JobState.FAILED:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.eta.setText("failed")


class JobsPanel(QWidget):
    """The list of jobs of a :class:`JobHub`.

    Signals:
        active_count_changed(int): how many jobs are queued or running (the status bar shows it).
    """

    active_count_changed = Signal(int)

    def __init__(self, hub: JobHub, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("JobsPanel")
        self.hub = hub
        self.rows: list[JobRow] = []
        self._list = QWidget()
        self._list.setObjectName("JobsList")
        self._layout = QVBoxLayout(self._list)
        self._layout.setContentsMargins(6, 6, 6, 6)
        self._layout.setSpacing(4)
        self.placeholder = label("No background jobs. Imports, searches and verifications appear here.",
                                 "placeholder", wrap=True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self.placeholder)
        self._layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self._list)
        self.clear_button = button("Clear finished", "clear")
        self.clear_button.clicked.connect(self.clear_finished)
        self.cancel_all_button = button("Cancel all", "cancel")
        self.cancel_all_button.clicked.connect(hub.cancel_all)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 0)
        self.summary = label("", "subtle")
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.cancel_all_button)
        bar.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(scroll, 1)
        hub.job_added.connect(self.add_job)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._update_summary()

    def add_job(self, job: Job) -> JobRow:
        row = JobRow(job, self._list)
        self.rows.insert(0, row)
        self._layout.insertWidget(0, row)
        self.placeholder.hide()
        job.started.connect(self._update_summary)
        job.finished.connect(self._update_summary)
        self._prune()
        self._update_summary()
        return row

    def row_for(self, job: Job) -> JobRow | None:
        return next((r for r in self.rows if r.job is job), None)

    def active_rows(self) -> list[JobRow]:
        return [r for r in self.rows if r.job.active]

    def clear_finished(self) -> None:
        for row in [r for r in self.rows if not r.job.active]:
            self._remove(row)
        self._update_summary()

    def _remove(self, row: JobRow) -> None:
        self.rows.remove(row)
        self._layout.removeWidget(row)
        row.deleteLater()

    def _prune(self) -> None:
        finished = [r for r in self.rows if not r.job.active]
        for row in finished[MAX_FINISHED_ROWS:]:
            self._remove(row)

    def _tick(self) -> None:
        for row in self.active_rows():
            row.tick()

    def _update_summary(self) -> None:
        active = len(self.active_rows())
        self.placeholder.setVisible(not self.rows)
        self.summary.setText(f"{active} running or queued" if active else
                             ("All jobs finished." if self.rows else ""))
        self.cancel_all_button.setEnabled(active > 0)
        self.clear_button.setEnabled(len(self.rows) > active)
        if active and not self._timer.isActive():
            self._timer.start()
        elif not active:
            self._timer.stop()
        self.active_count_changed.emit(active)
