"""Work-arounds for PySide6 defects that would crash a long-running workstation.

PySide6 6.12 on Python 3.11: ``SignalInstance.emit()`` and ``SignalInstance.disconnect()`` return
``True`` without taking a reference to it. Every call made from Python therefore lowers the reference
count of ``True`` by one; after a few thousand emits (progress reports, thumbnails, model updates) it
reaches zero and the interpreter aborts with "Fatal Python error: bool_dealloc". Python 3.12 made
``True`` immortal, which hides the defect there.

:func:`apply` measures each method once and, only where the reference is really lost, wraps it to
add the missing reference back, so a fixed PySide (or an immortal ``True``) is left untouched.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

_applied: list[str] = []


class _Probe(QObject):
    ping = Signal(int)


def _loses_reference(call: Callable[[], Any]) -> bool:
    before = sys.getrefcount(True)
    for _ in range(4):
        call()
    return sys.getrefcount(True) < before


def _wrap(name: str) -> None:
    original = getattr(SignalInstance, name)
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    incref.restype = None

    def fixed(self: SignalInstance, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if result is True or result is False:
            incref(result)
        return result

    fixed.__doc__ = original.__doc__
    fixed.__name__ = name
    setattr(SignalInstance, name, fixed)
    _applied.append(name)


def apply() -> list[str]:
    """Repair the affected methods (idempotent); returns the names of the methods wrapped."""
    if _applied:
        return list(_applied)
    probe = _Probe()
    if _loses_reference(lambda: probe.ping.emit(1)):
        _wrap("emit")

    def connect_disconnect() -> None:
        def slot(_value: int) -> None:
            return None

        probe.ping.connect(slot)
        probe.ping.disconnect(slot)

    if _loses_reference(connect_disconnect):
        _wrap("disconnect")
    return list(_applied)


def applied() -> list[str]:
    return list(_applied)
