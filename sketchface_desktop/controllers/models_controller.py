"""ModelsController: reads and changes the installed models for the models page, settings and status bar.

Views hold this controller, never the job runner: each method starts an op of
:mod:`sketchface_desktop.ops.models` (or the GPU facts of :mod:`sketchface_desktop.ops.generate`), and
every change to the installed models is followed by :attr:`ModelsController.models_changed`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.ops import Runner
from sketchface_desktop.ops import generate as generate_ops
from sketchface_desktop.ops import models as model_ops
from sketchface_desktop.workers import Job

ResultFn = Callable[[Any], None]
ErrorFn = Callable[[BaseException], None]


class ModelsController(QObject):
    """Model status, import, download, verification, and the compute device the models will use.

    Signals:
        models_changed(): models were imported, downloaded or verified (whoever shows model state refreshes).
    """

    models_changed = Signal()

    def __init__(self, runner: Runner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner

    # -- reads ---------------------------------------------------------------------------------
    def status(self, on_rows: Callable[[list[Any]], None]) -> Job:
        """Every model's status row (file checks only, io lane)."""
        return model_ops.status().success(on_rows).run(self.runner)

    def summary(self, on_result: Callable[[dict[str, Any]], None]) -> Job:
        """Whether search can run, what is missing, and whether a trained sketch encoder is installed."""
        return model_ops.summary().success(on_result).run(self.runner)

    def device(self, preference: str, on_result: Callable[[str], None], on_error: ErrorFn | None = None) -> Job:
        """Which device the models will use (engine lane: it may import torch)."""
        return model_ops.device(preference).success(on_result).failure(on_error).run(self.runner)

    def gpu_facts(self, on_result: Callable[[dict[str, Any]], None], on_error: ErrorFn | None = None) -> Job:
        """Free/total VRAM and where ONNX models run (engine lane)."""
        return generate_ops.gpu_facts().success(on_result).failure(on_error).run(self.runner)

    # -- changes -------------------------------------------------------------------------------
    def _change(self, op: Any, on_result: ResultFn | None) -> Job:
        def done(value: Any) -> None:
            if on_result is not None:
                on_result(value)
            self.models_changed.emit()

        return op.success(done).run(self.runner)  # type: ignore[no-any-return]

    def import_bundle(self, path: str, on_result: ResultFn | None = None) -> Job:
        """Install models from a folder, .zip or model file (engine lane, progress and cancel)."""
        return self._change(model_ops.import_bundle(path), on_result)

    def download(self, model_id: str, title: str, on_result: ResultFn | None = None) -> Job:
        """Download one model from its source (the examiner confirmed the connection)."""
        return self._change(model_ops.download(model_id, title), on_result)

    def verify_all(self, on_result: ResultFn | None = None) -> Job:
        """Hash every installed model file against its pin."""
        return self._change(model_ops.verify_all(), on_result)
