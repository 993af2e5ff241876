"""The line-ups in a case report: how each was built, its fairness figures with their formulas, swaps,
responses, and — in a section marked sealed — the key (which position held the suspect).

Why the key is here and nowhere else: the administration material must not reveal the suspect
(:mod:`engine.cases.lineup_pdf`); the case report is read after the procedure, by people who must be
able to check it, so the key, the witness's choice and whether it fell on the suspect are stated together.
"""

from __future__ import annotations

import html
from typing import Any

from engine.cases import lineup
from engine.cases.lineup_fairness import FORMULAS
from engine.cases.store import Case
from engine.pdf_layout import RED, ReportPDF

SEALED = "SEALED — line-up key: not for the administrator or the witness"


def lineup_data(case: Case) -> list[dict[str, Any]]:
    """Every line-up of the case as the report shows it (responses with their outcome)."""
    out = []
    for lu in lineup.list_lineups(case):
        d = lu.to_dict()
        d["responses"] = [{**r, "outcome": lu.outcome(resp)} for r, resp in zip(d["responses"], lu.responses,
                                                                                 strict=True)]
        out.append(d)
    return out


def _build_line(d: dict[str, Any]) -> str:
    p = d["params"]
    desc = ", ".join(f"{k} = {v} ({p['description_sources'].get(k, '')})" for k, v in d["description"].items())
    w = p.get("witness")
    if w:
        desc += f"; witness record {w['id']}: {w['reference']}, taken {w['taken_on']} by {w['taken_by']}"
    return (f"Built {d['created_at']} by {d['created_by']} from search {d['search_id']}: {d['mode']}, "
            f"{len(d['members'])} photos, seed {d['seed']}. Description fitted: {desc or 'none ticked'}. Similarity band "
            f"[{p['band'][0]:.3f}, {p['band'][1]:.3f}] ({p['band_source']}); {p['eligible_subjects']} eligible subjects; "
            f"{p['excluded_case_subjects']} subjects of this case excluded; galleries {', '.join(p['galleries'])}.")


def _fair_lines(d: dict[str, Any]) -> list[str]:
    f = d["fairness"]
    dist, mock = f.get("distinctiveness", {}), f.get("mock_witness", {})
    if not dist:
        return ["No fairness figures are recorded."]
    ratio = "undefined (D_f = 0)" if dist["ratio"] is None else f"{dist['ratio']:.2f}"
    size = ("undefined (no mock witness chose the suspect)" if mock["functional_size"] is None
            else f"{mock['functional_size']:.2f}")
    return [f"Face-space distinctiveness: D_s = {dist['suspect_to_fillers']:.3f}, D_f = "
            f"{dist['fillers_to_each_other']:.3f}, R = {ratio}. Formula: {FORMULAS['distinctiveness']}.",
            f"Mock witnesses (description only): suspect chosen {100 * mock['suspect_share']:.0f} % (fair "
            f"{100 * mock['fair_share']:.0f} %); functional size {size}; E' "
            f"{mock['effective_size']:.2f}. Formula: {FORMULAS['mock_witness']}."]


def _swap_line(s: dict[str, Any]) -> str:
    return (f"Swap at position {s['position']} ({s['created_at']}, {s['created_by']}): {s['old'][0]}:{s['old'][1]} → "
            f"{s['new'][0]}:{s['new'][1]}; reason: {s['reason']}")


def _response_line(r: dict[str, Any]) -> str:
    choice = "nobody chosen" if r["choice"] is None else f"position {r['choice']}"
    return (f"Response ({r['created_at']}, administrator {r['administrator'] or '—'}): {choice}; confidence: "
            f"“{r['confidence']}”.")


def _key_line(m: dict[str, Any]) -> str:
    fits = "" if m["metadata"].get("fits_description", True) else " — does NOT fit the description"
    return (f"{m['position']}: {m['role'].upper()} {m['gallery_id']}:{m['face_id']} subject {m['subject_id']}, "
            f"cosine to suspect {m['similarity']:.3f}{fits}")


def pdf_section(pdf: ReportPDF) -> None:
    """Draw the line-up section (nothing when the case has no line-up)."""
    rows = pdf.data.get("lineups") or []
    if not rows:
        return
    pdf.section("Photo line-ups")
    for d in rows:
        pdf.subsection(f"Line-up {d['id']}")
        pdf.para(_build_line(d), 8.5)
        for line in _fair_lines(d):
            pdf.para(line, 8.5)
        if d["warning"]:
            pdf.para(d["warning"], 9, RED, bold=True)
        for s in d["swaps"]:
            pdf.para(_swap_line(s), 8.5)
        for r in d["responses"]:
            pdf.para(_response_line(r), 9)
        pdf.para(SEALED, 9, RED, bold=True)
        for m in d["members"]:
            pdf.para(_key_line(m), 8.5)
        for r in d["responses"]:
            pdf.para(f"Outcome of response: {r['outcome']}.", 9, bold=True)


def html_section(data: dict[str, Any]) -> str:
    """The same section as HTML (escaped)."""
    rows = data.get("lineups") or []
    if not rows:
        return ""
    e = html.escape
    parts = ["<h2>Photo line-ups</h2>"]
    for d in rows:
        parts.append(f"<h3>Line-up {e(str(d['id']))}</h3><p>{e(_build_line(d))}</p>")
        parts += [f"<p>{e(line)}</p>" for line in _fair_lines(d)]
        if d["warning"]:
            parts.append(f"<p class=\"bad\"><b>{e(d['warning'])}</b></p>")
        parts += [f"<p>{e(_swap_line(s))}</p>" for s in d["swaps"]]
        parts += [f"<p>{e(_response_line(r))}</p>" for r in d["responses"]]
        parts.append(f"<p class=\"bad\"><b>{e(SEALED)}</b></p><ul>"
                     + "".join(f"<li>{e(_key_line(m))}</li>" for m in d["members"]) + "</ul>")
        parts += [f"<p><b>Outcome of response: {e(r['outcome'])}.</b></p>" for r in d["responses"]]
    return "".join(parts)
