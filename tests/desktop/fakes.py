"""Fakes for controller tests: an inline op runner and stand-ins for the views a controller talks to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sketchface_desktop.controllers.ports import SearchOptions
from sketchface_desktop.ops.search import ResultRow
from sketchface_desktop.workers import Job


class InlineRunner:
    """Runs each op at once in the calling thread (signals connected directly), and remembers it."""

    def __init__(self, execute: bool = True) -> None:
        self.execute = execute
        self.submitted: list[tuple[str, str]] = []  # (title, lane)
        self.jobs: list[Job] = []

    def submit(self, title: str, fn: Any, *, lane: str = "engine", visible: bool = True, cancellable: bool = True,
               on_result: Callable[[Any], None] | None = None, on_error: Callable[[BaseException], None] | None = None,
               on_finished: Callable[[Job], None] | None = None) -> Job:
        job = Job(title, fn, lane=lane, visible=visible, cancellable=cancellable)
        self.submitted.append((title, lane))
        self.jobs.append(job)
        if on_result is not None:
            job.result.connect(on_result)
        job.error.connect(on_error if on_error is not None else _raise)
        if on_finished is not None:
            job.finished.connect(lambda: on_finished(job))
        if self.execute:
            job.run()
        return job


def _raise(exc: BaseException) -> None:
    raise AssertionError(f"unexpected failure in an op: {exc!r}")


class FakeSketch:
    """A sheet: blank or holding bytes, with a saved/modified flag."""

    def __init__(self, png: bytes = b"", box: tuple[float, float, float, float] | None = None) -> None:
        self.png, self.box, self.modified = png, box, bool(png)

    def is_blank(self) -> bool:
        return not self.png

    def to_png_bytes(self) -> bytes:
        return self.png

    def face_box(self) -> tuple[float, float, float, float] | None:
        return self.box

    def is_modified(self) -> bool:
        return self.modified

    def mark_saved(self) -> None:
        self.modified = False

    def load_png(self, png: bytes | None) -> None:
        self.png, self.modified = png or b"", False


class FakeResults:
    """The results grid: records what was shown."""

    def __init__(self, options: SearchOptions | None = None) -> None:
        self.opts = options or SearchOptions(k=5)
        self.shown: list[tuple[list[ResultRow], int | None, str]] = []
        self.busy: list[str] = []
        self.can_decide: bool | None = None
        self.current: ResultRow | None = None

    def options(self) -> SearchOptions:
        return self.opts

    def show_rows(self, rows: list[ResultRow], search_id: int | None, summary: str) -> None:
        self.shown.append((rows, search_id, summary))

    def set_busy(self, text: str) -> None:
        self.busy.append(text)

    def set_can_decide(self, can: bool) -> None:
        self.can_decide = can

    def current_row(self) -> ResultRow | None:
        return self.current


class FakeScope:
    def __init__(self, ids: list[str] | None = None) -> None:
        self.ids = ids or []

    def checked_galleries(self) -> list[str]:
        return list(self.ids)


class FakePrompter:
    """Canned answers; every message and question is recorded."""

    def __init__(self, details: dict[str, Any] | None = None, witness: str | None = None, accept: bool = False) -> None:
        self.details, self.witness, self.accept = details, witness, accept
        self.told: list[tuple[str, str]] = []
        self.guides: list[str] = []
        self.asked: list[str] = []
        self.confirmed: list[str] = []

    def case_details(self, info: Any | None, default_examiner: str) -> dict[str, Any] | None:
        self.asked.append("case_details")
        return self.details

    def choose_case(self, cases: list[dict[str, Any]]) -> str | None:
        self.asked.append("choose_case")
        return str(cases[0]["case_id"]) if cases else None

    def choose_witness(self, known: list[str]) -> str | None:
        self.asked.append("choose_witness")
        return self.witness

    def choose_photo(self) -> str | None:
        self.asked.append("choose_photo")
        return None

    def tell(self, title: str, text: str) -> None:
        self.told.append((title, text))

    def guide(self, reason: str) -> None:
        self.guides.append(reason)

    def confirm(self, name: str, title: str, text: str, informative: str, accept: str, on_accept: Callable[[], Any],
                on_closed: Callable[[Any], None] | None = None, accept_name: str = "Confirm") -> Any:
        self.confirmed.append(name)
        handle = object()
        if self.accept:
            on_accept()
        if on_closed is not None:
            on_closed(handle)
        return handle


class FakeReconstructView:
    """The Reconstruct panel as the controller sees it."""

    def __init__(self) -> None:
        from sketchface_desktop.ops.generation import SOURCE_SKETCH, GenerateSettings

        self.source_kind = SOURCE_SKETCH
        self._settings = GenerateSettings(prompt="portrait", num_candidates=1, steps=1, size=32)
        self.statuses: list[str] = []
        self.cloud = False
        self._outputs: list[Any] = []
        self.running: list[bool] = []

    def settings(self) -> Any:
        return self._settings

    def set_running(self, running: bool, message: str = "") -> None:
        self.running.append(running)
        if message:
            self.statuses.append(message)

    def set_status(self, text: str) -> None:
        self.statuses.append(text)

    def set_attributes(self, attrs: Any, prompt: str) -> None:
        pass

    def set_cloud_enabled(self, enabled: bool) -> None:
        self.cloud = enabled

    def cloud_offered(self) -> bool:
        return self.cloud

    def outputs(self) -> list[Any]:
        return list(self._outputs)

    def add_output(self, output: Any) -> None:
        self._outputs.append(output)

    def show_outputs(self, outputs: list[Any], keep_previous: bool = False) -> None:
        self._outputs = list(outputs)

    def show_control_image(self, image: Any) -> None:
        self.control_image = image
