"""CaseController: the open case and everything the window does with it, run in the case lane.

Every sketch version, search and decision goes through ``engine.cases`` (one audited transaction
each), from one dedicated thread, so the case's SQLite connection is never used by two threads at
once and a decision is stored at once even while a long import occupies the engine lane.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.workers import Job, JobHub


class CaseController(QObject):
    """Owns the open :class:`engine.cases.Case` (touched only in the case lane).

    Signals:
        case_changed(object): the open case's CaseInfo, or None when no case is open.
        sketches_changed(list): the case's SketchVersion list.
        searches_changed(list): the case's SearchRecord list.
        candidates_ready(int, list): a search id and its Candidate list (with current decisions).
    """

    case_changed = Signal(object)
    sketches_changed = Signal(object)
    searches_changed = Signal(object)
    candidates_ready = Signal(int, object)

    def __init__(self, hub: JobHub, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.case: Any = None  # engine Case; only used inside case-lane jobs
        self.info: Any = None  # CaseInfo, for the GUI
        self.sketches: list[Any] = []
        self.searches: list[Any] = []
        self.current_sketch_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.info is not None

    def _run(self, title: str, fn: Callable[[], Any], on_result: Callable[[Any], None] | None = None,
             visible: bool = False) -> Job:
        return self.hub.submit(title, lambda _p, _c: fn(), lane="case", visible=visible, cancellable=False,
                               on_result=on_result)

    # -- open / create / close -----------------------------------------------------------------
    def create(self, case_number: str, title: str, *, examiner: str = "", witnesses: list[str] | None = None,
               incident_date: str = "", notes: str = "", location: str = "") -> Job:
        def work() -> tuple[Any, Any, list[Any], list[Any]]:
            from engine.cases import create_case

            case = create_case(case_number, title, examiner=examiner or None, witnesses=witnesses or [],
                               incident_date=incident_date, notes=notes, location=location or None)
            self._close_now()
            return self._adopt(case)

        return self._run(f"Creating case {case_number}", work, self._opened)

    def open(self, ref: str) -> Job:
        def work() -> tuple[Any, Any, list[Any], list[Any]]:
            from engine.cases import open_case

            case = open_case(ref)
            self._close_now()
            return self._adopt(case)

        return self._run(f"Opening case {ref}", work, self._opened)

    def _adopt(self, case: Any) -> tuple[Any, Any, list[Any], list[Any]]:
        from engine.cases import list_searches, list_sketches

        self.case = case
        return case, case.info, list_sketches(case), list_searches(case)

    def _opened(self, result: tuple[Any, Any, list[Any], list[Any]]) -> None:
        _case, info, sketches, searches = result
        self.info = info
        self.current_sketch_id = sketches[-1].sketch_id if sketches else None
        self.case_changed.emit(info)
        self._set_sketches(sketches)
        self._set_searches(searches)

    def close(self) -> Job:
        return self._run("Closing case", self._close_now, lambda _r: self._closed())

    def _close_now(self) -> None:
        if self.case is not None:
            self.case.close()
            self.case = None

    def _closed(self) -> None:
        self.info = None
        self.current_sketch_id = None
        self.case_changed.emit(None)
        self._set_sketches([])
        self._set_searches([])

    def update(self, **fields: Any) -> Job:
        def work() -> Any:
            from engine.cases import update_case

            return update_case(self.case, **fields)

        return self._run("Updating case details", work, self._updated)

    def _updated(self, info: Any) -> None:
        self.info = info
        self.case_changed.emit(info)

    def list_cases(self, on_result: Callable[[list[dict[str, Any]]], None]) -> Job:
        def work() -> list[dict[str, Any]]:
            from engine.cases import list_cases

            return list_cases()

        return self._run("Listing cases", work, on_result)

    # -- sketches ------------------------------------------------------------------------------
    def save_sketch(self, png: bytes, *, witness: str = "", note: str = "", new_sketch: bool = False,
                    name: str = "") -> Job:
        """Store the drawing as the next version of the current sketch (or as a new sketch)."""
        sketch_id = None if new_sketch else self.current_sketch_id

        def work() -> tuple[Any, list[Any]]:
            from engine.cases import add_sketch, list_sketches

            version = add_sketch(self.case, png, witness=witness if sketch_id is None else "", name=name,
                                 sketch_id=sketch_id, note=note)
            return version, list_sketches(self.case)

        def done(result: tuple[Any, list[Any]]) -> None:
            version, sketches = result
            self.current_sketch_id = version.sketch_id
            self._set_sketches(sketches)

        return self._run("Saving sketch version", work, done)

    def read_sketch(self, version: Any, on_result: Callable[[bytes], None]) -> Job:
        return self._run("Reading sketch", lambda: self.case.read_file(version.path, version.sha256), on_result)

    def _set_sketches(self, sketches: list[Any]) -> None:
        self.sketches = list(sketches)
        self.sketches_changed.emit(self.sketches)

    # -- searches and decisions ---------------------------------------------------------------
    def store_search(self, result: Any, query_images: list[bytes], thumbnails: dict[Any, bytes], *,
                     blind: bool = False, label: str = "") -> Job:
        """Record a finished search in the case; ``candidates_ready`` follows with its rows."""
        def work() -> tuple[int, list[Any], list[Any]]:
            from engine.cases import add_search, candidates, list_searches

            rec = add_search(self.case, result.manifest, result.matches, query_images, thumbnails=thumbnails,
                             blind=blind, label=label)
            return rec.id, candidates(self.case, rec.id), list_searches(self.case)

        def done(res: tuple[int, list[Any], list[Any]]) -> None:
            sid, rows, searches = res
            self._set_searches(searches)
            self.candidates_ready.emit(sid, rows)

        return self._run("Recording search in case", work, done)

    def load_candidates(self, search_id: int) -> Job:
        def work() -> list[Any]:
            from engine.cases import candidates

            return candidates(self.case, search_id)

        return self._run("Reading search results", work, lambda rows: self.candidates_ready.emit(search_id, rows))

    def record_decision(self, search_id: int, face_id: int, gallery_id: str, decision: str, note: str = "",
                        on_result: Callable[[Any], None] | None = None) -> Job:
        def work() -> list[Any]:
            from engine.cases import record_decisions

            return record_decisions(self.case, search_id, [{"face_id": face_id, "gallery_id": gallery_id,
                                                             "decision": decision, "note": note}])

        def done(rows: list[Any]) -> None:
            self.candidates_ready.emit(search_id, rows)
            if on_result is not None:
                on_result(rows)

        return self._run("Recording decision", work, done)

    def query_images(self, search_id: int, on_result: Callable[[list[bytes]], None]) -> Job:
        def work() -> list[bytes]:
            from engine.cases import query_images

            return query_images(self.case, search_id)

        return self._run("Reading query images", work, on_result)

    def _set_searches(self, searches: list[Any]) -> None:
        self.searches = list(searches)
        self.searches_changed.emit(self.searches)

    def read_case_file(self, rel: str, sha256: str | None = None) -> bytes:
        """Bytes of a file stored in the case (call from a case-lane job only)."""
        return bytes(self.case.read_file(rel, sha256))

    def shutdown(self) -> None:
        """Close the case from the GUI thread at exit, after the case lane has stopped."""
        self._close_now()
