"""Page layout for the PDF reports (case and validation): an fpdf2 document with DejaVu fonts, running
header/footer, tables. A primitive below cases and validate, so both use it without importing each other.

Fonts are embedded (subset), the creation date is the report's own time stamp and the file ID is
derived from the content, so the same case state and time stamp give the same bytes on any machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, WrapMode, XPos, YPos
from PIL import Image

from engine.paths import fonts_dir
from engine.timestamps import parse_utc

Cell = str | Image.Image | None
GREY = (90, 90, 90)
RED = (178, 24, 24)
GREEN = (22, 120, 50)
RULE = (200, 200, 200)
_MAX_CELL_LINES = 14
DECISION_LABEL = {"possible": "possible", "excluded": "excluded", "not_reviewed": "not reviewed"}


def _pdf_date(iso: str) -> datetime:
    try:
        return parse_utc(iso)
    except ValueError:
        return datetime(2000, 1, 1, tzinfo=UTC)


class ReportPDF(FPDF):
    """An A4 report page set with a running header and footer and table/section helpers: the one PDF page
    class. Other documents set ``running_title``, ``running_right`` and ``running_footer`` in ``data``
    instead of drawing their own header and footer."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.data = data
        fonts = fonts_dir()
        self.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
        mono = fonts / "DejaVuSansMono.ttf"
        self.add_font("DejaVuMono", "", str(mono if mono.is_file() else fonts / "DejaVuSans.ttf"))
        self.set_margins(15, 16, 15)
        self.set_auto_page_break(auto=True, margin=16)
        case = data["case"]
        self.set_title(f"Case report {case['case_number']}")
        self.set_subject(case["title"])
        self.set_author(case["examiner"])
        self.set_creator(data["report"]["generator"])
        self.set_creation_date(_pdf_date(data["report"]["generated_at"]))
        self.set_lang("en")

    # -- running header / footer -------------------------------------------------------------
    def header(self) -> None:
        """Running header: product and case on every page."""
        self.set_font("DejaVu", "", 7.5)
        self.set_text_color(*GREY)
        case = self.data["case"]
        self.cell(self.epw / 2, 5, self.data.get("running_title", "SketchFace Workstation · Case report"),
                  new_x=XPos.RIGHT, new_y=YPos.TOP)
        right = self.data.get("running_right") or f"Case {case['case_number']} · {case['title']}"
        self.cell(self.epw / 2, 5, right[:90], align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*RULE)
        self.line(self.l_margin, self.y, self.w - self.r_margin, self.y)
        self.ln(3)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        """Running footer: the limitation in one line, the audit status and the page number."""
        self.set_y(-12)
        self.set_font("DejaVu", "", 7)
        self.set_text_color(*GREY)
        left = self.data.get("running_footer") or ""  # material with its own footer (line-up administration)
        if not left:
            audit = self.data["audit"]
            status = "intact" if audit["ok"] else "BROKEN"
            left = (f"Investigative leads, not identifications · audit chain {status}: {audit['count']} entries, "
                    f"head {audit['head'][:16]}…")
        self.cell(self.epw - 30, 5, left, new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.cell(30, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0, 0, 0)

    # -- building blocks ---------------------------------------------------------------------
    def section(self, title: str, keep: float = 20) -> None:
        """A numbered-less section heading, moved to a new page unless ``keep`` mm of content fit under it."""
        if self.will_page_break(keep + 12):
            self.add_page()
        self.ln(3)
        self.set_font("DejaVu", "B", 13)
        self.cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*RULE)
        self.line(self.l_margin, self.y, self.w - self.r_margin, self.y)
        self.ln(2)

    def subsection(self, title: str, keep: float = 20) -> None:
        """A smaller heading, kept with ``keep`` mm of what follows."""
        if self.will_page_break(keep + 8):
            self.add_page()
        self.ln(2)
        self.set_font("DejaVu", "B", 10.5)
        self.multi_cell(0, 6, title, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def para(self, text: str, size: float = 9, color: tuple[int, int, int] = (0, 0, 0), bold: bool = False) -> None:
        """A left-aligned paragraph across the page width."""
        self.set_font("DejaVu", "B" if bold else "", size)
        self.set_text_color(*color)
        self.multi_cell(0, size * 0.48, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)

    def wrap(self, w: float, line_h: float, text: str, mono: bool = False) -> list[str]:
        """The lines ``text`` wraps to in the current font at width ``w`` (nothing is drawn)."""
        if "\n" not in text and self.get_string_width(text) <= w - 2 * self.c_margin - 0.01:
            return [text]  # the common short cell: skip fpdf2's (slow) line breaker
        lines = self.multi_cell(w, line_h, text, dry_run=True, output=MethodReturnValue.LINES,
                                wrapmode=WrapMode.CHAR if mono else WrapMode.WORD)
        return [str(x) for x in cast(list[str], lines)]

    def _lines(self, w: float, text: str, line_h: float, mono: bool) -> list[str]:
        lines = self.wrap(w, line_h, text, mono)
        if len(lines) > _MAX_CELL_LINES:
            lines = [*lines[: _MAX_CELL_LINES - 1], lines[_MAX_CELL_LINES - 1][:-1] + "…"]
        return lines

    def row(self, widths: Sequence[float], cells: Sequence[Cell], *, size: float = 8, bold: bool = False,
            mono: Sequence[int] = (), colors: dict[int, tuple[int, int, int]] | None = None,
            img_h: float = 0, fill: tuple[int, int, int] | None = None,
            on_new_page: Callable[[], None] | None = None) -> None:
        """One table row: text cells wrap, image cells are fitted in ``img_h``; never split across pages."""
        line_h = size * 0.46
        wrapped: list[list[str] | None] = []
        for i, (w, c) in enumerate(zip(widths, cells, strict=True)):
            if isinstance(c, str):
                self.set_font("DejaVuMono" if i in mono else "DejaVu", "B" if bold and i not in mono else "",
                              size - (0.5 if i in mono else 0))
                wrapped.append(self._lines(w, c, line_h, i in mono))
            else:
                wrapped.append(None)
        h = max([len(x) * line_h for x in wrapped if x] + [img_h + 2 if img_h else 0, line_h]) + 1.2
        if self.will_page_break(h):
            self.add_page()
            if on_new_page:
                on_new_page()
        x, y = self.l_margin, self.y
        if fill:
            self.set_fill_color(*fill)
            self.rect(x, y, sum(widths), h, style="F")
        for i, (w, c, lines) in enumerate(zip(widths, cells, wrapped, strict=True)):
            if lines is not None:
                self.set_font("DejaVuMono" if i in mono else "DejaVu", "B" if bold and i not in mono else "",
                              size - (0.5 if i in mono else 0))
                self.set_text_color(*((colors or {}).get(i, (0, 0, 0))))
                for n, line in enumerate(lines):  # already wrapped: draw line by line, no second wrapping pass
                    self.set_xy(x, y + 0.6 + n * line_h)
                    self.cell(w, line_h, line, align="L")
            elif isinstance(c, Image.Image):
                scale = min((w - 2) / c.width, img_h / c.height)
                self.image(c, x + 1, y + 1, c.width * scale, c.height * scale)
            x += w
        self.set_text_color(0, 0, 0)
        self.set_draw_color(*RULE)
        self.line(self.l_margin, y + h, self.l_margin + sum(widths), y + h)
        self.set_xy(self.l_margin, y + h)

    def key_values(self, pairs: Sequence[tuple[str, str]], mono_keys: Sequence[str] = ()) -> None:
        """A two-column label/value table (values in ``mono_keys`` rows use the monospace font)."""
        for key, value in pairs:
            self.row([42, self.epw - 42], [key, value], size=8.5, mono=(1,) if key in mono_keys else (),
                     colors={0: GREY})
