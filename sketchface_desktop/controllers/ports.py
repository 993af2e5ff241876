"""What controllers need from the views, as small protocols: a fake in a test satisfies them as well as a widget.

Controllers import no widget module; the window hands them objects that have these methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sketchface_desktop.ops.search import Box, ResultRow


@dataclass(frozen=True)
class SearchOptions:
    """The search options the examiner set in the results panel."""

    k: int = 50
    filters: tuple[str, ...] = ()
    group_by_subject: bool = False
    blind: bool = False
    fuse: bool = False


class SketchSource(Protocol):
    """The sheet being drawn."""

    def is_blank(self) -> bool: ...
    def to_png_bytes(self) -> bytes: ...
    def face_box(self) -> Box | None: ...
    def is_modified(self) -> bool: ...
    def mark_saved(self) -> None: ...
    def load_png(self, png: bytes | None) -> None: ...


class ResultsDisplay(Protocol):
    """The results grid: what the controller shows there and the options it reads."""

    def options(self) -> SearchOptions: ...
    def show_rows(self, rows: list[ResultRow], search_id: int | None, summary: str) -> None: ...
    def set_busy(self, text: str) -> None: ...
    def set_can_decide(self, can: bool) -> None: ...
    def current_row(self) -> ResultRow | None: ...


class GalleryScope(Protocol):
    """Which galleries are ticked for searching."""

    def checked_galleries(self) -> list[str]: ...


class Prompter(Protocol):
    """Questions and messages for the examiner (dialogs, in the window; canned answers, in tests)."""

    def case_details(self, info: Any | None, default_examiner: str) -> dict[str, Any] | None: ...
    def choose_case(self, cases: list[dict[str, Any]]) -> str | None: ...
    def choose_witness(self, known: list[str]) -> str | None: ...
    def choose_photo(self) -> str | None: ...
    def tell(self, title: str, text: str) -> None: ...
    def guide(self, reason: str) -> None: ...
    def confirm(self, name: str, title: str, text: str, informative: str, accept: str,
                on_accept: Callable[[], Any], on_closed: Callable[[Any], None] | None = None,
                accept_name: str = "Confirm") -> Any:
        """Ask without blocking; ``on_accept()`` if the examiner accepts, ``on_closed(handle)`` in any case."""
