"""Run output: JSON lines on stdout (read by the desktop app), TensorBoard scalars, a log file.

Why JSON lines on stdout and nothing else there: the desktop app runs training as a subprocess and
parses each stdout line as one event; human-readable messages and library noise go to stderr.
Only rank 0 of a distributed run reports.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class RunReporter:
    """Writes events; a no-op on ranks other than 0.

    Args:
        out_dir: the run folder (``events.jsonl`` copy and TensorBoard logs go there).
        enabled: False on non-zero ranks.
        tensorboard: write TensorBoard scalars when the package is installed.
        stream: where JSON lines go (stdout by default).
        tag: fields added to every event of one run inside a study of several (an ablation study:
            ``{"recipe": "without coral", "ablated": "coral"}``); its ``done``/``cancelled`` become
            ``run_done``/``run_cancelled``, because those two end the whole process for the desktop app.
        progress_span: ``(k, n)``: this run is the k-th of n, so ``step`` events' ``progress`` covers
            ``[k/n, (k+1)/n]`` and the app's progress bar runs once over the whole study.
    """

    TERMINAL = ("done", "cancelled")

    def __init__(self, out_dir: Path | None, enabled: bool = True, tensorboard: bool = True,
                 stream: IO[str] | None = None, tag: dict[str, Any] | None = None,
                 progress_span: tuple[int, int] | None = None) -> None:
        self.enabled = enabled
        self.tag = dict(tag or {})
        self.progress_span = progress_span
        self.stream = stream if stream is not None else sys.stdout
        self.history: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        self._tb: Any = None
        self.tb_dir: str | None = None
        if not enabled or out_dir is None:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(out_dir / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if tensorboard:
            self._open_tensorboard(out_dir / "tb")

    def _open_tensorboard(self, tb_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is the [train] extra; without it only JSON lines are written
            self.emit("warning", message="tensorboard is not installed; scalars are only in events.jsonl")
            return
        try:
            self._tb = SummaryWriter(log_dir=str(tb_dir))
            self.tb_dir = str(tb_dir)
        except OSError as exc:
            # Synced/cloud folders sometimes refuse the event file: fall back to a local folder.
            fallback = Path(tempfile.gettempdir()) / "sketchface_tb" / tb_dir.parent.name
            self._tb = SummaryWriter(log_dir=str(fallback))
            self.tb_dir = str(fallback)
            self.emit("warning", message=f"TensorBoard logs moved to {fallback} ({exc})")

    def emit(self, event: str, **fields: Any) -> None:
        """One JSON line: {"event": ..., "time": ..., **fields}."""
        if not self.enabled:
            return
        if self.tag:
            fields = {**fields, **self.tag}
            event = f"run_{event}" if event in self.TERMINAL else event
        if self.progress_span is not None and event == "step" and isinstance(fields.get("progress"), int | float):
            k, n = self.progress_span
            fields = {**fields, "progress": (k + float(fields["progress"])) / max(1, n)}
        doc = _clean({"event": event, "time": round(time.time(), 3), **fields})
        line = json.dumps(doc, ensure_ascii=False, default=str)
        self.history.append(doc)
        self.stream.write(line + "\n")
        self.stream.flush()
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()

    def scalars(self, step: int, values: dict[str, float], prefix: str) -> None:
        if self._tb is None:
            return
        for key, value in values.items():
            if isinstance(value, int | float) and math.isfinite(float(value)):
                self._tb.add_scalar(f"{prefix}/{key}", float(value), step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None
        if self._file is not None:
            self._file.close()
            self._file = None
