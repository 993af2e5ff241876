"""Crash handling from the first line: faulthandler, rotating logs, and an excepthook that shows a dialog.

An examiner must never lose a case to a silent crash, and support must be able to see what happened:
a native crash is written by ``faulthandler`` into ``crash.log``, an unhandled Python exception goes
to ``sketchface.log`` (rotating) with its traceback and to a dialog that says where the log is.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType
from typing import IO

from engine.logfile import rotating_log

log = logging.getLogger("sketchface_desktop")

_state: dict[str, object] = {}


def log_file() -> Path:
    from engine import paths

    return paths.log_dir() / "sketchface.log"


def init_logging(level: int = logging.INFO) -> Path:
    """Send log records to a rotating file in the user log dir (5 x 2 MB) and to stderr (warnings)."""
    path = log_file()
    root = logging.getLogger()
    if not any(getattr(h, "_sketchface", False) for h in root.handlers):
        handler = rotating_log(path, 2_000_000, 5)  # fails quietly, once, when the disk is full or read-only
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        handler._sketchface = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > level:
            root.setLevel(level)
    return path


def init_faulthandler() -> Path:
    """Dump the stacks of all threads to ``crash.log`` if the process dies in native code."""
    from engine import paths

    path = paths.log_dir() / "crash.log"
    stream: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - must stay open for the process
    _state["fault_stream"] = stream
    faulthandler.enable(file=stream, all_threads=True)
    return path


def format_exception(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    return "".join(traceback.format_exception(exc_type, exc, tb))


def _show_dialog(summary: str, details: str) -> None:
    """Show the crash dialog if a QApplication exists and we are in its thread; otherwise only log."""
    from PySide6.QtCore import QThread
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance()
    if app is None or QThread.currentThread() is not app.thread() or _state.get("in_dialog"):
        return
    _state["in_dialog"] = True
    try:
        box = QMessageBox(QMessageBox.Icon.Critical, "SketchFace: unexpected error", summary)
        box.setInformativeText(f"Details were written to {log_file()}. Your case data is stored as you go; "
                               "save your sketch and restart if the window misbehaves.")
        box.setDetailedText(details)
        box.setObjectName("CrashDialog")
        box.exec()
    finally:
        _state["in_dialog"] = False


def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """Log an unhandled exception with its traceback, then tell the user in a dialog."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    details = format_exception(exc_type, exc, tb)
    log.critical("Unhandled exception:\n%s", details)
    hook = _state.get("test_hook")
    if callable(hook):
        hook(exc_type, exc, tb)
        return
    _show_dialog(f"{exc_type.__name__}: {exc}", details)


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    details = format_exception(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    log.critical("Unhandled exception in thread %s:\n%s", getattr(args.thread, "name", "?"), details)


def install() -> None:
    """Early init: logging, faulthandler and exception hooks. Safe to call more than once."""
    if _state.get("installed"):
        return
    init_logging()
    init_faulthandler()
    sys.excepthook = excepthook
    threading.excepthook = _thread_hook
    _state["installed"] = True
    log.info("SketchFace Workstation starting (Python %s)", sys.version.split()[0])
