"""The validation report (PDF), drawn with the case reports' page layout (fpdf2, DejaVu, same tables)."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np
from fpdf.enums import XPos, YPos
from PIL import Image

import engine
from engine.pdf_layout import GREY, RED, ReportPDF
from engine.validate.plots import group_rank, label

LIMITATIONS = [
    "These figures describe these solved cases against this gallery. Sketches from other witnesses or "
    "artists, or a larger gallery, can give other rates: re-validate when either changes.",
    "Intervals are 95 % Wilson score intervals for each rate. With few cases they are wide; groups with "
    "few cases say little either way.",
    "A high rank is an investigative lead, never an identification. Ranks are exact over the whole gallery "
    "(one entry per subject id), as a search grouped by subject would list them.",
]


class ValidationPDF(ReportPDF):
    """The case report layout (:class:`engine.pdf_layout.ReportPDF`, its header and footer) with the
    validation's running texts."""

    def __init__(self, doc: dict[str, Any]) -> None:
        # ReportPDF reads its title and creator from a case report's fields: give it the validation's.
        g = doc["gallery"]
        super().__init__({"case": {"case_number": "validation", "title": f"Validation against {g['name']}",
                                   "examiner": ""},
                          "report": {"generator": f"SketchFace Workstation {engine.__version__}",
                                     "generated_at": doc["created_at"]},
                          "running_title": "SketchFace Workstation · Validation report",
                          "running_right": f"Gallery {g['name']} · {doc['created_at'][:10]}",
                          "running_footer": "Measured on these solved cases and this gallery only; leads, not "
                                            "identifications"})
        self.doc = doc
        self.set_title(f"Validation against {g['name']}")

    def figure(self, png: bytes | None, width: float | None = None) -> None:
        """A plot across the page (or ``width`` mm), moved to a new page when it does not fit."""
        if not png:
            return
        im = Image.open(BytesIO(png))
        w = width or self.epw
        h = w * im.height / im.width
        if self.will_page_break(h + 2):
            self.add_page()
        self.image(im, self.l_margin + (self.epw - w) / 2, self.y, w, h)
        self.set_y(self.y + h + 2)


def _cover(pdf: ValidationPDF) -> None:
    d = pdf.doc
    g = d["gallery"]
    pdf.set_font("DejaVu", "B", 19)
    pdf.multi_cell(0, 9, "Validation on solved cases", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 12)
    pdf.multi_cell(0, 6.5, f"{d['cases']['validated']} sketches searched against {g['name']}",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    encoders = "\n".join(f"{label(n)}: weights {e['embedder'].get('model_sha256') or '—'}"
                         for n, e in d["encoders"].items())
    pdf.key_values([
        ("Gallery", f"{g['name']} ({g['id']}), content version {g['content_version']}"),
        ("Gallery size", f"{g['subjects']:,} subjects (a face without a subject id counts as one), "
                         f"{g['faces']:,} faces"),
        ("Solved cases", f"{d['cases']['found']} found, {d['cases']['validated']} validated, "
                         f"{len(d['cases']['unresolved'])} left out (listed at the end)"),
        ("Encoders", encoders), ("ArcFace model", str(g.get("model_sha256") or "—")),
        ("Run", d["created_at"]), ("Engine version", d["engine_version"]),
    ], mono_keys=("Encoders", "ArcFace model"))
    for note in d["notes"]:
        pdf.para(note, 8.5, RED)
    pdf.ln(3)
    pdf.subsection("Limitations — read before relying on these figures", keep=25)
    pdf.para("\n".join(f"• {x}" for x in LIMITATIONS), 8.5)


def _summary(pdf: ValidationPDF) -> None:
    d = pdf.doc
    names = list(d["encoders"])
    pdf.section("Hit rates", keep=40)
    pdf.para("Share of solved cases with the true person at rank k or better, with its 95 % interval.", 8.5, GREY)
    widths = [22] + [(pdf.epw - 22) / len(names)] * len(names)
    pdf.row(widths, ["Rank"] + [label(n) for n in names], size=8, bold=True, fill=(235, 235, 235))
    for r in d["ranks"]:
        cells = [f"top {r}"]
        for n in names:
            x = d["encoders"][n]["hit_rates"][str(r)]
            cells.append(f"{100 * x['rate']:.1f} %  ({100 * x['low']:.1f}–{100 * x['high']:.1f}) · {x['hits']}/{x['n']}")
        pdf.row(widths, cells, size=8)
    pdf.row(widths, ["median rank"] + [f"{d['encoders'][n]['median_rank']:g}" for n in names], size=8)
    pdf.ln(3)
    pdf.figure(d.get("_png", {}).get("cmc"), width=150)


def _groups(pdf: ValidationPDF) -> None:
    d = pdf.doc
    if not d["group_keys"]:
        return
    names = list(d["encoders"])
    r = str(group_rank(d))
    pdf.section("By group", keep=60)
    pdf.para(f"Hit rate at rank {r} per group of the true subject (gallery metadata), with 95 % intervals. Every "
             "case is in exactly one group of each breakdown (missing values: 'unknown').", 8.5, GREY)
    widths = [40, 14] + [(pdf.epw - 54) / len(names)] * len(names)
    for key in d["group_keys"]:
        pdf.subsection(f"By {key.replace('_', ' ')}", keep=30)
        pdf.row(widths, ["Group", "Cases"] + [label(n) for n in names], size=8, bold=True, fill=(235, 235, 235))
        for value, first in d["encoders"][names[0]]["groups"][key].items():
            cells = [value, str(first["n"])]
            for n in names:
                x = d["encoders"][n]["groups"][key][value]["hit_rates"][r]
                cells.append(f"{100 * x['rate']:.1f} %  ({100 * x['low']:.1f}–{100 * x['high']:.1f}) · "
                             f"{x['hits']}/{x['n']}")
            pdf.row(widths, cells, size=8)
    pdf.ln(2)
    pdf.figure(d.get("_png", {}).get("groups"))


def _scores(pdf: ValidationPDF, calibrated: dict[str, str | None]) -> None:
    d = pdf.doc
    pdf.section("Scores and calibration", keep=80)
    pdf.para("A raw cosine cannot be compared across queries or encoders. The distributions below show where "
             "true matches and wrong candidates scored in this validation.", 8.5, GREY)
    pdf.figure(d.get("_png", {}).get("scores"))
    for n, enc in d["encoders"].items():
        pdf.subsection(label(n), keep=30)
        true = [c["score"] for c in enc["cases"]]
        best = [c["best_other"] for c in enc["cases"] if c["best_other"] is not None]
        lo, hi = float(np.percentile(best or true, 5)), float(np.percentile(true, 95))
        digits = 2 if abs(hi - lo) >= 0.12 else 3
        thresholds = sorted({round(float(x), digits) for x in np.linspace(min(lo, hi), max(lo, hi), 7)})
        widths = [44] + [(pdf.epw - 44) / len(thresholds)] * len(thresholds)
        pdf.row(widths, ["score at least"] + [f"{t:.{digits}f}" for t in thresholds], size=7.5, bold=True,
                fill=(235, 235, 235))
        pdf.row(widths, ["true matches"] + [f"{100 * sum(x >= t for x in true) / len(true):.0f} %"
                                            for t in thresholds], size=7.5)
        if best:
            pdf.row(widths, ["best wrong candidate"] + [f"{100 * sum(x >= t for x in best) / len(best):.0f} %"
                                                        for t in thresholds], size=7.5)
        state = calibrated.get(n)
        pdf.ln(1)
        pdf.para(state or "No calibration is in use for this encoder: search results and case reports make no "
                          "claim about what its scores mean.", 8.5, GREY if state else RED)


def _cases(pdf: ValidationPDF) -> None:
    d = pdf.doc
    names = list(d["encoders"])
    pdf.section("Appendix: cases", keep=30)
    widths = [38, 30, 14] + [(pdf.epw - 82) / len(names)] * len(names)

    def head() -> None:
        pdf.row(widths, ["Case", "True subject", "Truth"] + [f"{label(n)}: rank · score" for n in names],
                size=7, bold=True, fill=(235, 235, 235))

    head()
    per = {n: d["encoders"][n]["cases"] for n in names}
    for i, c in enumerate(per[names[0]]):
        pdf.row(widths, [c["case"], c["subject"], c["truth"]] +
                [f"{per[n][i]['rank']:,} · {per[n][i]['score']:.3f}" for n in names], size=7, on_new_page=head)
    if d["cases"]["unresolved"]:
        pdf.subsection("Cases left out", keep=20)
        for u in d["cases"]["unresolved"]:
            pdf.para(f"• {u['case']}: {u['reason']}", 8)


def render_pdf(doc: dict[str, Any], pngs: dict[str, bytes | None],
               calibrated: dict[str, str | None] | None = None) -> bytes:
    """The validation report of ``doc`` (a run's ``to_dict()``) with its plots ``pngs`` (cmc, groups, scores)."""
    pdf = ValidationPDF({**doc, "_png": pngs})
    pdf.add_page()
    _cover(pdf)
    _summary(pdf)
    _groups(pdf)
    _scores(pdf, calibrated or {})
    _cases(pdf)
    return bytes(pdf.output())
