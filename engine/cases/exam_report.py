"""The examination in a case report: probe intakes, authorizations, each candidate's sheet and conclusion, limits.

Why beside the score: a conclusion printed alone reads as stronger than the evidence; printed beside
the comparison sheet it rests on and the calibrated meaning of the score (or the statement that no
calibration exists), a reader can judge it. The limits (validation hit rates per group, or that none
exists; that a sketch search yields leads, not identifications) are stated in every report.
"""

from __future__ import annotations

import html
from typing import Any

from engine.cases import authorization, exam_checks, examination, searches
from engine.cases.store import Case
from engine.pdf_layout import ReportPDF
from engine.validate.calibration import NO_CALIBRATION, calibration_for

LEADS_NOT_IDENTIFICATIONS = "A sketch search yields leads, not identifications."


def _validation_limits(search_rows: list[searches.SearchRecord]) -> list[str]:
    """Per encoder used: its validation hit rates per group with sizes and intervals, or that none exists."""
    out, seen = [], set()
    for s in search_rows:
        emb = s.manifest.get("embedder") or {}
        key = str(emb.get("sha256") or emb.get("model_sha256") or emb.get("kind") or "unknown encoder")
        if key in seen:
            continue
        seen.add(key)
        name = f"{emb.get('kind', 'encoder')} {key[:12]}"
        cal = calibration_for(emb)
        groups = (cal.extra.get("groups") if cal is not None else None) or {}
        if cal is None:
            out.append(f"No validation exists for the {name} used here: how often it ranks the right person, and "
                       "whether that differs between groups of people, is not known for this workstation.")
            continue
        if not groups:
            out.append(f"The {name} was validated on {cal.n_cases} solved cases ({cal.validated_at[:10]}); that "
                       "validation kept no per-group figures, so differences between groups are not known.")
            continue
        parts = []
        for key_, values in groups.items():
            cells = []
            for value, g in values.items():
                rates: dict[str, Any] = g.get("hit_rates") or {}
                r1: dict[str, Any] = rates.get("1") or next(iter(rates.values()), {})
                rate, lo, hi = r1.get("rate"), r1.get("low"), r1.get("high")
                shown = ("—" if rate is None or lo is None or hi is None
                         else f"{100 * rate:.0f} % (95 % interval {100 * lo:.0f}–{100 * hi:.0f} %)")
                cells.append(f"{value}: {shown}, n={g.get('n')}")
            parts.append(f"{key_}: " + "; ".join(cells))
        out.append(f"Validation of the {name} on {cal.n_cases} solved cases ({cal.validated_at[:10]}), rank-1 hit "
                   f"rate per group — " + " | ".join(parts) + ".")
    return out


def limitations(case: Case) -> list[str]:
    """The limits every report states, beyond the general ones."""
    return [LEADS_NOT_IDENTIFICATIONS, *_validation_limits(searches.list_searches(case))]


def _first_search(search_rows: list[searches.SearchRecord], sha: str) -> int | None:
    return next((s.id for s in search_rows if any(q.sha256 == sha for q in s.queries)), None)


SEARCHED_BEFORE_INTAKE = "searched before intake"


def searched_before_intake(case: Case) -> list[dict[str, Any]]:
    """Every query image a search used before any intake of that image was recorded (oldest search first).

    Why listed, never hidden: the initial assessment of a probe (ENFSI) belongs before it is relied on.
    A search made without it is not an error in the record, but a reader must see it; a later intake
    does not make the earlier search one made after assessment.
    """
    entries = case.audit_entries()
    search_seq = {e.object: e.seq for e in entries if e.action in ("search.add", "search.rerun")}
    intake_seqs: dict[str, list[int]] = {}
    for i in examination.list_intakes(case):
        seq = next((e.seq for e in entries if e.action == "probe.intake" and e.details.get("intake_id") == i.id), None)
        intake_seqs.setdefault(i.probe_sha256, []).append(seq if seq is not None else 0)
    out = []
    for s in searches.list_searches(case):
        seq = search_seq.get(f"search:{s.id}")
        for q in s.queries:
            earlier = [n for n in intake_seqs.get(q.sha256, []) if seq is None or n < seq]
            if not earlier:
                later = bool(intake_seqs.get(q.sha256))
                out.append({"search_id": s.id, "query": q.idx, "kind": q.kind, "sha256": q.sha256,
                            "text": f"Search {s.id}, query image {int(q.idx) + 1} ({q.kind}, SHA-256 "
                                    f"{q.sha256[:16]}…): {SEARCHED_BEFORE_INTAKE}"
                                    + (" (its intake was recorded later)" if later else " (no intake recorded)")})
    return out


def _who(c: dict[str, Any]) -> str:
    """A candidate as the examiner knows it: gallery name (and id, which names it for good) and face."""
    name = c.get("gallery_name") or ""
    return f"{name} ({c['gallery_id']}), face {c['face_id']}" if name else f"{c['gallery_id']}:{c['face_id']}"


def examination_data(case: Case, search_sections: list[dict[str, Any]]) -> dict[str, Any]:
    """The examination part of the report data (JSON-ready)."""
    search_rows = searches.list_searches(case)
    entries = case.audit_entries()
    seq_of = {(e.action, str(e.details.get("intake_id") or e.object)): e.seq for e in entries}
    intakes = []
    for i in examination.list_intakes(case):
        first = _first_search(search_rows, i.probe_sha256)
        search_seq = seq_of.get(("search.add", f"search:{first}")) if first is not None else None
        intake_seq = seq_of.get(("probe.intake", str(i.id)))
        timing = ("not searched yet" if first is None else f"recorded before its first search (search {first})"
                  if search_seq is None or (intake_seq or 0) < search_seq else
                  f"recorded AFTER its first search (search {first})")
        intakes.append({**i.to_dict(), "timing": timing,
                        "label": "" if i.evidential else examination.NON_EVIDENTIAL})
    out = []
    for sec in search_sections:
        sid = int(sec["id"])
        probe = exam_checks.search_probe_type(case.conn, sid)
        cal = calibration_for(sec["manifest"].get("embedder") or {})
        concl = {(c.gallery_id, c.face_id): c for c in examination.conclusions(case, sid)}
        cands = []
        for c in sec["candidates"]:
            try:
                key = (str(c["gallery_id"]), int(c["face_id"]))
            except (TypeError, ValueError):  # a tampered row: verify names it; the report still prints
                continue
            rows = examination.sheet(case, sid, *key)
            if not rows and key not in concl:
                continue
            score, rank = c.get("score"), c.get("rank")
            meaning = (NO_CALIBRATION if cal is None else "Score hidden (blind review)." if score is None
                       else cal.note(float(score), rank if isinstance(rank, int) else None))
            cc = concl.get(key)
            cands.append({"gallery_id": key[0], "gallery_name": str(c.get("gallery_name") or ""),
                          "face_id": key[1], "rank": rank, "score": score,
                          "calibrated_meaning": meaning, "sheet": [r.to_dict() for r in rows],
                          "conclusion": cc.to_dict() if cc is not None else None})
        probe_labels = [i["label"] for i in intakes if i["label"] and any(q["sha256"] == i["probe_sha256"]
                                                                          for q in sec["queries"])]
        out.append({"search_id": sid, "probe_type": probe, "non_evidential": bool(probe_labels) or probe == "generated",
                    "authorization": authorization.authorization(case, sid), "candidates": cands})
    return {"fiswg": examination.FISWG_VERSION, "intakes": intakes, "searches": out,
            "searched_before_intake": searched_before_intake(case)}


def _auth_text(auth: dict[str, Any] | None) -> str:
    if auth is None:
        return "No search policy applied (no authorization recorded)."
    fields = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in auth["fields"].items()) or "none required"
    return f"Authorization: {fields} (policy SHA-256 {auth['policy_sha256'][:16]}…)"


def _sheet_line(r: dict[str, Any]) -> str:
    why = f" ({r['reason']})" if r["reason"] else ""
    return f"{r['title']}: {r['assessment']}{why}{' — ' + r['note'] if r['note'] else ''}"


def pdf_section(pdf: ReportPDF) -> None:
    """Draw the examination section (intakes, then per search: authorization, sheets and conclusions)."""
    d = pdf.data.get("examination") or {}
    pdf.section("Examination: probe intake, comparison sheets, conclusions")
    pdf.para(f"Comparison components: {d.get('fiswg', '')}.", 8.5)
    if not d.get("intakes"):
        pdf.para("No probe intake is recorded in this case.", 9)
    for i in d.get("intakes", []):
        pdf.para(f"Intake {i['id']} of {i['probe_ref']} ({i['probe_type']} probe): source {i['source']}"
                 f"{' (' + i['software'] + ')' if i['software'] else ''}; witness {i['witness'] or '—'}; delay "
                 f"{i['delay'] or '—'}; artist {i['artist'] or '—'}; alterations {i['alterations'] or '—'}; "
                 f"suitability {i['suitability'].upper()}{': ' + i['reasons'] if i['reasons'] else ''}; {i['timing']}.",
                 9, bold=bool(i["label"]))
        if i["label"]:
            pdf.para(i["label"], 9, (170, 30, 30), bold=True)
        for m in i["marks"]:
            pdf.para(f"  {m['kind']} — {m['location']}: {m['description']}", 8.5)
    for b in d.get("searched_before_intake", []):
        pdf.para(b["text"], 9, (170, 30, 30), bold=True)
    for s in d.get("searches", []):
        pdf.subsection(f"Search {s['search_id']} — {s['probe_type']} probe")
        if s["non_evidential"]:
            pdf.para(examination.NON_EVIDENTIAL, 9, (170, 30, 30), bold=True)
        pdf.para(_auth_text(s["authorization"]), 8.5)
        if not s["candidates"]:
            pdf.para("No comparison sheet or conclusion is recorded for this search.", 9)
        for c in s["candidates"]:
            pdf.para(f"Candidate {_who(c)} (rank {c['rank'] if c['rank'] is not None else '—'})",
                     9.5, bold=True)
            cc = c["conclusion"]
            pdf.para(f"Conclusion: {cc['level_text'] + ' [' + cc['scale_id'] + ']' if cc else 'none recorded'}", 9)
            pdf.para(f"Score meaning: {c['calibrated_meaning']}", 8.5)
            pdf.para("Sheet: " + ("; ".join(_sheet_line(r) for r in c["sheet"]) or "no component assessed"), 8.5)


def html_section(data: dict[str, Any]) -> str:
    """The same section as HTML (escaped)."""
    d = data.get("examination") or {}
    e = html.escape
    parts = ["<h2>Examination: probe intake, comparison sheets, conclusions</h2>",
             f"<p class=\"note\">Comparison components: {e(d.get('fiswg', ''))}.</p>"]
    parts += [f"<p>Intake {e(str(i['id']))} of {e(i['probe_ref'])} ({e(i['probe_type'])} probe): source "
              f"{e(i['source'])}; suitability {e(i['suitability'])} {e(i['reasons'])}; {e(i['timing'])}."
              + (f" <b class=\"bad\">{e(i['label'])}</b>" if i["label"] else "") + "</p>"
              for i in d.get("intakes", [])] or ["<p>No probe intake is recorded in this case.</p>"]
    parts += [f"<p class=\"bad\">{e(b['text'])}</p>" for b in d.get("searched_before_intake", [])]
    for s in d.get("searches", []):
        parts.append(f"<h3>Search {e(str(s['search_id']))} — {e(s['probe_type'])} probe</h3>"
                     + (f"<p class=\"bad\">{e(examination.NON_EVIDENTIAL)}</p>" if s["non_evidential"] else "")
                     + f"<p>{e(_auth_text(s['authorization']))}</p>")
        for c in s["candidates"]:
            cc = c["conclusion"]
            parts.append(f"<h4>Candidate {e(_who(c))}</h4><p>Conclusion: "
                         f"{e(cc['level_text']) if cc else 'none recorded'}</p><p>Score meaning: "
                         f"{e(c['calibrated_meaning'])}</p><ul>"
                         + "".join(f"<li>{e(_sheet_line(r))}</li>" for r in c["sheet"]) + "</ul>")
    return "".join(parts)
