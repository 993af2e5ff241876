"""The watch list in a case report: each watch, its runs (when, galleries, versions, faces searched) and its hits.

Why in the report: a candidate that came from a watch was found by a search over only the faces added
since the watch last looked, months after the original search; a reader must be able to see when each
run happened, which gallery versions it covered, how many faces it searched, and which hits an examiner
acknowledged (each acknowledged hit is then an ordinary search of the case, reported with the others).
"""

from __future__ import annotations

import html
from typing import Any

from engine.cases import watch_records
from engine.cases.store import Case
from engine.pdf_layout import ReportPDF

TITLE = "Watch list: runs and hits"


def _bar(bar: dict[str, Any]) -> str:
    if bar.get("kind") == "calibrated":
        return f"calibrated bar: score >= {float(bar['threshold']):.3f} (kept {float(bar['share']):.0%} of true matches)"
    return (f"uncalibrated bar: rank <= {bar.get('rank')}, score >= {float(bar.get('score', 0)):.3f} "
            f"(applied as score >= {float(bar.get('threshold', 0)):.3f})")


def watch_data(case: Case) -> dict[str, Any]:
    """The watches, runs and hits of the case as plain data (what both renderers draw)."""
    runs = watch_records.list_runs(case)
    hits = watch_records.list_hits(case)
    out = []
    for w in watch_records.list_watches(case):
        out.append({"id": w.id, "search_id": w.search_id, "status": w.status, "ended_reason": w.ended_reason,
                    "created_at": w.created_at, "created_by": w.created_by, "bar": _bar(w.bar),
                    "galleries": [g.get("name") or g.get("id") for g in w.galleries],
                    "runs": [r for r in runs if r["watch_id"] == w.id],
                    "hits": [h.to_dict() for h in hits if h.watch_id == w.id]})
    return {"watches": out}


def _run_line(r: dict[str, Any]) -> str:
    parts = [f"{g.get('name') or g.get('id')} v{g.get('from_version')}→v{g.get('to_version')}, "
             f"{g.get('new_faces', 0)} new, {g.get('removed_faces', 0)} removed"
             + (f", {len(g['left_gallery'])} recorded candidate(s) left the gallery" if g.get("left_gallery") else "")
             for g in r["galleries"]]
    text = f"Run {r['id']} at {r['ran_at']} by {r['ran_by']}: {r['outcome']}; {r['faces_searched']} faces searched, "
    text += f"{r['n_hits']} hit(s)" + (f"; {'; '.join(parts)}" if parts else "")
    return text + (f". {r['reason']}" if r["reason"] else ".")


def _hit_line(h: dict[str, Any]) -> str:
    ack = (f"acknowledged by {h['acknowledged_by']} at {h['acknowledged_at']} (search {h['search_id']})"
           if h["acknowledged_at"] else "not yet acknowledged")
    return (f"Hit {h['id']}: face {h['gallery_id']}:{h['face_id']} ({h['photo_path']}), score {h['score']:.3f}, "
            f"gallery content version {h['content_version']}, run {h['run_id']}; {ack}")


def pdf_section(pdf: ReportPDF) -> None:
    """Draw the watch section (nothing when the case has no watch)."""
    d = pdf.data.get("watches") or {}
    if not d.get("watches"):
        return
    pdf.section(TITLE)
    for w in d["watches"]:
        pdf.subsection(f"Watch {w['id']} of search {w['search_id']} — {w['status']}")
        pdf.para(f"Since {w['created_at']} ({w['created_by']}); galleries {', '.join(map(str, w['galleries']))}; "
                 f"{w['bar']}" + (f". Ended: {w['ended_reason']}" if w["ended_reason"] else "") + ".", 8.5)
        for r in w["runs"]:
            pdf.para(_run_line(r), 8.5)
        for h in w["hits"]:
            pdf.para(_hit_line(h), 9, bold=not h["acknowledged_at"])
        if not w["runs"]:
            pdf.para("No run yet.", 8.5)


def html_section(data: dict[str, Any]) -> str:
    """The same section as HTML (escaped)."""
    d = data.get("watches") or {}
    if not d.get("watches"):
        return ""
    e = html.escape
    parts = [f"<h2>{e(TITLE)}</h2>"]
    for w in d["watches"]:
        parts.append(f"<h3>Watch {w['id']} of search {w['search_id']} — {e(w['status'])}</h3>"
                     f"<p>Since {e(w['created_at'])} ({e(w['created_by'])}); galleries "
                     f"{e(', '.join(map(str, w['galleries'])))}; {e(w['bar'])}"
                     + (f". Ended: {e(w['ended_reason'])}" if w["ended_reason"] else "") + ".</p><ul>"
                     + "".join(f"<li>{e(_run_line(r))}</li>" for r in w["runs"])
                     + "".join(f"<li><b>{e(_hit_line(h))}</b></li>" for h in w["hits"]) + "</ul>")
    return "".join(parts)
