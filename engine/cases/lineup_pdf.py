"""Administration material of a photo line-up: instructions, the photos, and the witness's response form.

Why it carries nothing of the key: the line-up is to be administered double-blind (Wells et al. 2020,
recommendation 3): the person showing it must not know which photo is the suspect, so nothing in the
material may tell (order of drawing, captions, file names, image sizes, PDF metadata). Every photo is
drawn the same way at the same size with only its position number; the document's title, subject and
author name the line-up by number only. The key stays in the case (:mod:`engine.cases.lineup`).

Simultaneous: all photos on one page (an array of 2 rows). Sequential: one photo per page, shown in
order, each with the same caption.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image

from engine import __version__
from engine.pdf_layout import GREY, ReportPDF
from engine.timestamps import utc_now_iso

if TYPE_CHECKING:
    from engine.cases.lineup import Lineup

PHOTO_PX = 320
WITNESS_INSTRUCTIONS = (
    "You will be shown a set of photographs.",
    "The person who committed the crime may or may not be in this set.",
    "The person administering this procedure does not know which person, if any, is under investigation.",
    "You do not have to choose anyone. It is as important to clear innocent people as to identify the guilty. "
    "The investigation will continue whether or not you choose someone.",
    "People's appearance may change: hair style, facial hair and weight may differ from the day of the event.",
    "If you recognise someone, say so, and then state in your own words how confident you are.",
)
ADMINISTRATOR_INSTRUCTIONS = (
    "Read the witness instructions aloud before showing any photograph; give no other comment or feedback.",
    "Record the witness's words about confidence immediately, before anything else is said.",
    "Do not indicate by word, look or gesture whether a choice is right or wrong.",
)


def _photo(data: bytes) -> Image.Image:
    """Every photo at the same size and form (RGB, square, re-encoded), so none differs in the file either."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    im = im.crop((left, top, left + side, top + side)).resize((PHOTO_PX, PHOTO_PX), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return Image.open(io.BytesIO(buf.getvalue()))


def _new_pdf(lineup: Lineup, case_number: str, generated_at: str) -> ReportPDF:
    title = f"Photo line-up {lineup.id}"
    pdf = ReportPDF({"case": {"case_number": case_number, "title": title, "examiner": ""},
                     "report": {"generator": f"SketchFace Workstation {__version__}", "generated_at": generated_at},
                     "running_title": "SketchFace Workstation · Line-up administration",
                     "running_footer": f"Case {case_number} · {title} · administration material"})
    pdf.set_title(title)
    pdf.set_subject("Line-up administration material")
    pdf.set_author("")
    pdf.set_keywords("")
    return pdf


def _instructions(pdf: ReportPDF, lineup: Lineup, mode: str) -> None:
    pdf.add_page()
    pdf.section(f"Photo line-up {lineup.id} — {mode} presentation")
    pdf.subsection("To the administrator")
    for line in ADMINISTRATOR_INSTRUCTIONS:
        pdf.para(f"• {line}", 9.5)
    if mode == "sequential":
        pdf.para("• Show the photographs one at a time, in page order, each once; ask after each whether it is the "
                 "person seen.", 9.5)
    pdf.subsection("Instructions to read to the witness")
    for line in WITNESS_INSTRUCTIONS:
        pdf.para(f"• {line}", 10)


def _caption(pdf: ReportPDF, x: float, y: float, w: float, n: int) -> None:
    pdf.set_font("DejaVu", "B", 14)
    pdf.set_xy(x, y)
    pdf.cell(w, 8, str(n), align="C")


def _array(pdf: ReportPDF, photos: list[Image.Image]) -> None:
    pdf.add_page()
    pdf.section("Photographs")
    cols = 3 if len(photos) <= 9 else 4
    w = (pdf.epw - (cols - 1) * 6) / cols
    top = pdf.get_y() + 2
    for i, im in enumerate(photos):
        r, c = divmod(i, cols)
        x, y = pdf.l_margin + c * (w + 6), top + r * (w + 14)
        pdf.image(im, x, y, w, w)
        _caption(pdf, x, y + w + 1, w, i + 1)


def _sequence(pdf: ReportPDF, photos: list[Image.Image]) -> None:
    for i, im in enumerate(photos):
        pdf.add_page()
        pdf.section(f"Photograph {i + 1} of {len(photos)}")
        w = pdf.epw * 0.7
        x = pdf.l_margin + (pdf.epw - w) / 2
        y = pdf.get_y() + 4
        pdf.image(im, x, y, w, w)
        _caption(pdf, x, y + w + 2, w, i + 1)


def _form(pdf: ReportPDF, lineup: Lineup, mode: str, n: int) -> None:
    pdf.add_page()
    pdf.section("Witness response form")
    pdf.para(f"Line-up {lineup.id} · {mode} presentation · {n} photographs", 9, GREY)
    pdf.ln(2)
    if mode == "sequential":
        for i in range(1, n + 1):
            pdf.para(f"Photograph {i}:   ☐ yes, this is the person   ☐ no   — witness's words: "
                     "______________________________", 10)
    else:
        pdf.para("☐ The person I saw is number ____", 11)
        pdf.para("☐ The person I saw is not in these photographs", 11)
        pdf.para("☐ I cannot say", 11)
    pdf.ln(3)
    pdf.para("Confidence statement, in the witness's own words, written down at once:", 10, bold=True)
    for _ in range(4):
        pdf.para("_" * 95, 10)
    pdf.ln(3)
    for label in ("Witness", "Administrator", "Date and time", "Other persons present"):
        pdf.para(f"{label}: ______________________________________________", 10)
    pdf.para("The administrator states that they did not know which photograph, if any, shows the person under "
             "investigation: signature ____________________", 9.5)


def administration_pdf(lineup: Lineup, thumbnails: dict[int, bytes], *, case_number: str, mode: str,
                       generated_at: str | None = None) -> bytes:
    """The material to give the administrator: instructions, photos by position, response form.

    Args:
        thumbnails: each position's photo bytes (checked by the caller against the recorded digest).
        generated_at: the material's time stamp (default now; fixed by tests for identical bytes).
    """
    stamp = generated_at or utc_now_iso()
    pdf = _new_pdf(lineup, case_number, stamp)
    photos = [_photo(thumbnails[m.position]) for m in sorted(lineup.members, key=lambda m: m.position)]
    _instructions(pdf, lineup, mode)
    (_sequence if mode == "sequential" else _array)(pdf, photos)
    _form(pdf, lineup, mode, len(photos))
    return bytes(pdf.output())
