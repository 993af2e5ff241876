"""A long session must not abort: emitting signals never drains the reference count of ``True``."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, Signal

import sketchface_desktop  # noqa: F401 - importing the package applies the fixes

pytestmark = pytest.mark.gui


class Emitter(QObject):
    value = Signal(int)


def test_emit_and_disconnect_keep_true_alive() -> None:
    e = Emitter()
    received: list[int] = []
    e.value.connect(received.append)
    before = sys.getrefcount(True)
    for i in range(20_000):  # more emits than True has references in a fresh interpreter
        e.value.emit(i)

    def slot(_v: int) -> None:
        return None

    for _ in range(200):
        e.value.connect(slot)
        e.value.disconnect(slot)
    assert len(received) == 20_000
    assert sys.getrefcount(True) >= before
