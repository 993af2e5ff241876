"""The PDF case report's sections, drawn from the gathered report content (see ``report_data``)."""

from __future__ import annotations

import json
from typing import Any

from fpdf.enums import WrapMode, XPos, YPos

from engine.cases import exam_report, lineup_report, watch_report
from engine.cases.images import SYNTHETIC_STAMP, display_copy
from engine.cases.report_data import disagreement_lines
from engine.cases.store import Case
from engine.environment import describe_software
from engine.errors import CaseError
from engine.pdf_layout import DECISION_LABEL, GREEN, GREY, RED, Cell, ReportPDF


def _fmt(value: Any, spec: str) -> str:
    """A number formatted with ``spec``; a tampered non-number is printed as it is."""
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _candidate_table(pdf: ReportPDF, case: Case | None, s: dict[str, Any]) -> None:
    hidden = s["scores_hidden"]
    has_thumbs = any(c["thumbnail_path"] for c in s["candidates"])
    face_w = 15.0 if has_thumbs else 0.01
    widths = [11, face_w, 14, 27, 52, 21, pdf.epw - 125 - face_w]
    heads = ["Pos." if hidden else "Rank", "Face" if has_thumbs else "", "Score", "Gallery · face",
             "Photo file · SHA-256", "Decision", "Note · by"]

    def header_row() -> None:
        pdf.row(widths, heads, size=7.5, bold=True, fill=(235, 235, 235))

    header_row()
    for c in s["candidates"]:
        thumb: Cell = ""
        if has_thumbs and c["thumbnail_path"] and case is not None:
            try:
                thumb = display_copy(case.read_file(c["thumbnail_path"], c["thumbnail_sha256"]), 96)
            except CaseError:
                thumb = "altered"
        rank = f"{c['position']}" if hidden else f"{c['rank']}"
        score = "withheld" if hidden else _fmt(c["score"], ".4f")
        if not hidden and c.get("calibration_share") is not None:
            score += f"\n({100 * c['calibration_share']:.0f} %)"
        who = f"{c['gallery_name'] or c['gallery_id']}\nface {c['face_id']}\nsubject {c['subject_id'] or '—'}" + (
            "\nArcFace baseline" if c["baseline"] else "")
        photo = f"{c['photo_path'].replace(chr(92), '/').rsplit('/', 1)[-1]}\n{c['photo_sha256']}"
        by = f"{c['decided_by']}, {c['decided_at']}" if c["decided_by"] else ""
        if c.get("decided_by_key"):
            by += f"\n{c['decided_by_key']['identifier']}, key {str(c['decided_by_key']['fingerprint'])[:16]}…"
        note = "\n".join(x for x in (c["note"], by) if x)
        if c["decision_changes"]:
            note += f"\n({c['decision_changes']} earlier decision(s))"
        colour = {"possible": GREEN, "excluded": GREY}.get(c["decision"], (0, 0, 0))
        pdf.row(widths, [rank, thumb, score, who, photo, DECISION_LABEL.get(c["decision"], c["decision"]), note],
                size=7.5, mono=(4,), img_h=12 if has_thumbs else 0, colors={5: colour}, on_new_page=header_row)


def _search(pdf: ReportPDF, case: Case | None, s: dict[str, Any]) -> None:
    m = s["manifest"]
    title = f"Search {s['id']}" + (f": {s['label']}" if s["label"] else "")
    pdf.subsection(title, keep=60)
    emb = m.get("embedder") or {}
    galleries = "\n".join(f"{g.get('name', g['id'])} ({g['id']}): content version {g.get('content_version')}, "
                          f"{g.get('face_count')} faces" for g in m.get("galleries", [])) or "—"
    queries = "\n".join(f"{q['kind']} ×{_fmt(q['weight'], 'g')}  {q['sha256']}" for q in s["queries"])
    pairs = [
        ("Run", f"{s['created_at']} by {s['created_by']}"),
        ("Review mode", s["mode"]),
        ("Query images", queries),
        ("Embedder", f"{emb.get('kind')}  {emb.get('sha256') or '—'}"),
        ("ArcFace model", str(m.get("arcface_sha256") or "—")),
        ("Galleries", galleries),
        ("Search mode", s["search_mode"]),
        ("Filters", "; ".join(str(f) for f in m["filters"]) if m.get("filters") else "none"),
        ("k / grouping", f"k={m.get('k')}, grouped by subject: {'yes' if m.get('group_by_subject') else 'no'}"),
        ("Engine version", str(m.get("engine_version"))),
        ("Software", describe_software(m.get("software") or {})),
        ("Manifest SHA-256", s["manifest_sha256"]),
        ("Results SHA-256", s["results_sha256"]),
        ("Decisions", ", ".join(f"{DECISION_LABEL[k]}: {v}" for k, v in s["decision_counts"].items())),
        ("Decided by", "\n".join(k["text"] for k in s.get("deciders", [])) or "no examiner-signed decision"),
    ]
    if s["rerun_of"] is not None and s["rerun"] is not None:
        verdict = "identical result list" if s["rerun"]["identical"] else "result list CHANGED"
        pairs.insert(1, ("Re-run of", f"search {s['rerun_of']}: {verdict}"
                         + "".join(f"\n• {c}" for c in s["rerun"]["changes"])))
    pdf.key_values(pairs, mono_keys=("Query images", "Embedder", "ArcFace model", "Manifest SHA-256",
                                     "Results SHA-256"))
    if s["queries"]:  # the images that were searched, as stored in the case (checked against their SHA-256)
        pdf.ln(1)
        _image_grid(pdf, case, [(q["path"], q["sha256"], q["caption"], False) for q in s["queries"]])
    if s["baseline"]:
        pdf.ln(1)
        pdf.para(s["baseline_note"], 8.5, RED)
    pdf.ln(2)
    shown = f"Top {s['shown_candidates']} of {s['total_candidates']} candidates" \
        if s["shown_candidates"] < s["total_candidates"] else f"All {s['total_candidates']} candidates"
    if s["scores_hidden"]:
        shown += " in blind (shuffled) order; ranks and scores are withheld until every candidate is decided"
    pdf.para(shown + ".", 8.5, GREY)
    if not s["scores_hidden"] and s.get("calibration"):
        pdf.para(s["calibration"], 8, GREY)
    if s["candidates"]:
        _candidate_table(pdf, case, s)
    else:
        pdf.para("This search returned no candidates.", 9)


def _cover(pdf: ReportPDF) -> None:
    d = pdf.data
    case = d["case"]
    pdf.set_font("DejaVu", "B", 19)
    pdf.multi_cell(0, 9, f"Case report — {case['case_number']}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", "", 12)
    pdf.multi_cell(0, 6.5, case["title"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.key_values([
        ("Case number", case["case_number"]), ("Case id", case["case_id"]), ("Examiner", case["examiner"]),
        ("Witnesses", ", ".join(case["witnesses"]) or "—"), ("Incident date", case["incident_date"] or "—"),
        ("Status", case["status"]), ("Opened", case["created_at"]), ("Last updated", case["updated_at"]),
        ("Notes", case["notes"] or "—"), ("Report generated", d["report"]["generated_at"]),
        ("Generated by", d["report"]["generator"]),
    ])
    pdf.ln(4)
    y = pdf.y
    pdf.set_fill_color(255, 246, 214)
    pdf.set_draw_color(214, 170, 60)
    text = "\n".join(f"• {line}" for line in d["limitations"])
    pdf.set_font("DejaVu", "", 8.5)
    h = len(pdf.wrap(pdf.epw - 6, 4.1, text)) * 4.1 + 12
    pdf.rect(pdf.l_margin, y, pdf.epw, h, style="DF")
    pdf.set_xy(pdf.l_margin + 3, y + 2)
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(0, 6, "Limitations — read before using this report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_x(pdf.l_margin + 3)
    pdf.set_font("DejaVu", "", 8.5)
    pdf.multi_cell(pdf.epw - 6, 4.1, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(y + h + 2)


def _audit_status(pdf: ReportPDF) -> None:
    a = pdf.data["audit"]
    pdf.section("Audit chain")
    intact = ("INTACT — every entry verified against its hash, its predecessor and the anchors kept outside "
              "the log; every record and file verified against the log.")
    broken = "BROKEN — the case was altered after it was recorded; see the problems below."
    pdf.para(intact if a["ok"] else broken, 10, GREEN if a["ok"] else RED, bold=True)
    pdf.ln(1)
    sig = a.get("signature") or {}
    if sig:
        who = "this workstation" if sig.get("this_workstation") else "ANOTHER workstation (compare the key)"
        signed = [("Head signed", f"{'valid' if sig.get('valid') else 'DOES NOT VERIFY'}; entry #{sig.get('count')} "
                                  f"signed by {who}"),
                  ("Head signature (Ed25519)", str(sig.get("signature"))),
                  ("Workstation public key", str(sig.get("public_key"))), ("Key fingerprint", str(sig.get("fingerprint")))]
    else:
        signed = [("Head signed", "NONE: the head is not signed by a workstation key")]
    pdf.key_values([("Entries", str(a["count"])), ("Head hash", a["head"]), *signed,
                    ("Anchors checked", ", ".join(a["anchors_checked"]) or "—")],
                   mono_keys=("Head hash", "Head signature (Ed25519)", "Workstation public key", "Key fingerprint"))
    for f in a["findings"]:
        pdf.para(f"• {f['message']}", 8.5, RED)
    pdf.ln(1)
    pdf.para(f"To check this case later against this printed report: {a.get('check_command', '')}  (the head "
             "printed here must still be in the log, and the head signature must verify with the public key "
             "printed here).", 7.5, GREY)
    for i in a.get("imports", []):
        who = "this workstation" if i.get("this_workstation") else "another workstation"
        pdf.para(f"Imported at entry #{i.get('seq')} ({i.get('ts')}) from archive {i.get('archive_sha256')}, whose "
                 f"head (entry #{i.get('signed_count')}) was signed by {who}: key {i.get('fingerprint')}.", 7.5, GREY)


def _signoffs(pdf: ReportPDF) -> None:
    pdf.section("Second-examiner sign-off")
    rows = pdf.data["signoffs"]
    if not rows:
        pdf.para("No second-examiner sign-off is recorded.", 9)
        return
    for so in rows:
        scope = f"search {so['search_id']}" if so["search_id"] else "the whole case"
        pdf.para(f"{so['examiner']} ({so['role']}) signed off {scope} on {so['signed_at']}, covering audit entries "
                 f"1–{so['audit_count']} (head {so['audit_head']}).", 9)
        if so["statement"]:
            pdf.para(f"“{so['statement']}”", 9, GREY)
        if so.get("reviewer"):
            pdf.para(f"Signed by {so['reviewer']['text']}"
                     + (", with a review file returned from their workstation" if so.get("returned_review_file")
                        else "") + ".", 8.5)
        if so.get("scope"):
            pdf.para(f"Scope of the review: {so['scope']}", 8.5)
        if so.get("blind"):
            lines = disagreement_lines(so)
            pdf.para("Blind verification: " + ("; ".join(lines) if lines else
                                                 "no disagreement with the first examiner's decisions") + ".", 8.5,
                     RED if lines else GREY)
        if so["changes_after"]:
            pdf.para(f"Changed after this sign-off: {'; '.join(so['changes_after'][:20])}", 8.5, RED)
        pdf.ln(1)


def _image_grid(pdf: ReportPDF, case: Case | None, entries: list[tuple[str, str, str, bool]]) -> None:
    """Images three to a row, each with its caption: (path, sha256, caption, synthetic)."""
    col_w, img_h, gap = (pdf.epw - 8) / 3, 52.0, 4.0
    for start in range(0, len(entries), 3):
        chunk = entries[start:start + 3]
        pdf.set_font("DejaVu", "", 7.5)
        cap_h = max(len(pdf.wrap(col_w, 3.5, cap)) for _, _, cap, _ in chunk) * 3.5 + 6
        if pdf.will_page_break(img_h + cap_h + 4):
            pdf.add_page()
        y = pdf.y
        for i, (path, sha, caption, synthetic) in enumerate(chunk):
            x = pdf.l_margin + i * (col_w + gap)
            try:
                if case is None:
                    raise CaseError("no case")
                im = display_copy(case.read_file(path, sha), 520, stamp=synthetic)
                scale = min(col_w / im.width, img_h / im.height)
                pdf.image(im, x, y, im.width * scale, im.height * scale)
            except (CaseError, OSError, ValueError):
                pdf.set_xy(x, y + img_h / 2)
                pdf.para("[image missing or altered]", 8, RED)
            pdf.set_xy(x, y + img_h + 1.5)
            if synthetic:
                pdf.set_font("DejaVu", "B", 8)
                pdf.set_text_color(*RED)
                pdf.cell(col_w, 4, SYNTHETIC_STAMP, new_x=XPos.LEFT, new_y=YPos.NEXT)
                pdf.set_text_color(0, 0, 0)
            pdf.set_x(x)
            pdf.set_font("DejaVu", "", 7.5)
            pdf.multi_cell(col_w, 3.5, caption, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_xy(pdf.l_margin, y + img_h + cap_h + 4)


def _sketches(pdf: ReportPDF, case: Case | None) -> None:
    rows = pdf.data["sketches"]
    pdf.section("Sketches", keep=70 if rows else 10)
    if not rows:
        pdf.para(pdf.data.get("sketches_note") or "No sketch is stored in this case.", 9)
        return
    _image_grid(pdf, case, [(v["path"], v["sha256"],
                             f"{v['name']} v{v['version']} · witness {v['witness']}\n{v['created_at']} by "
                             f"{v['created_by']}\n{v['note']}\nSHA-256 {v['sha256']}".replace("\n\n", "\n"), False)
                            for v in rows])


def _generated(pdf: ReportPDF, case: Case | None) -> None:
    rows = pdf.data["generated_images"]
    if not rows:
        return
    pdf.section("Generated images (synthetic)", keep=80)
    pdf.para("These images were generated by a model. They are investigative aids showing one possible "
             "appearance, never photographs of a real person.", 8.5, RED)
    pdf.ln(1)
    _image_grid(pdf, case, [(g["path"], g["sha256"],
                             f"Generated image {g['id']} · from {g['parent_label']}\n{g['created_at']} by "
                             f"{g['created_by']}\nSHA-256 {g['sha256']}", True) for g in rows])
    for g in rows:
        pdf.subsection(f"Parameters of generated image {g['id']}")
        pdf.set_font("DejaVuMono", "", 7)
        pdf.multi_cell(0, 3.3, json.dumps(g["params"], indent=1, sort_keys=True, ensure_ascii=False),
                       wrapmode=WrapMode.CHAR, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _attachments_and_models(pdf: ReportPDF) -> None:
    d = pdf.data
    if d["attachments"]:
        pdf.section("Attachments")
        widths = [50, 18, pdf.epw - 68]
        pdf.row(widths, ["Name", "Size", "SHA-256 · added"], size=7.5, bold=True, fill=(235, 235, 235))
        for a in d["attachments"]:
            pdf.row(widths, [a["name"], f"{_fmt(a['size'], ',')} B", f"{a['sha256']}\n{a['created_at']} by {a['created_by']}"],
                    size=7.5)
    pdf.section("Models: provenance and licences", keep=40)
    if not d["models"]:
        pdf.para("No model produced anything in this case.", 9)
    for m in d["models"]:
        pdf.subsection(m["title"], keep=30)
        pdf.key_values([("Model id", m["model_id"]), ("Used for", ", ".join(m["used_for"])),
                        ("File SHA-256", "\n".join(m["sha256"]) or "not recorded"), ("Licence", m["licence"]),
                        ("Source", m["source"] or "—")], mono_keys=("File SHA-256",))


def _audit_log(pdf: ReportPDF) -> None:
    pdf.section("Appendix: audit log", keep=30)
    widths = [10, 34, 28, 36, pdf.epw - 108]
    heads = ["#", "Time (UTC)", "User", "Action", "Object"]

    def header_row() -> None:
        pdf.row(widths, heads, size=7, bold=True, fill=(235, 235, 235))

    header_row()
    for e in pdf.data["audit"]["entries"]:
        pdf.row(widths, [str(e["seq"]), e["ts"], e["user"], e["action"], e["object"]], size=7,
                on_new_page=header_row)


def render_pdf(data: dict[str, Any], case: Case | None) -> bytes:
    """Draw the report; images are read from ``case`` (and checked against their SHA-256)."""
    pdf = ReportPDF(data)
    pdf.add_page()
    _cover(pdf)
    _audit_status(pdf)
    _signoffs(pdf)
    _sketches(pdf, case)
    pdf.section("Searches")
    if not data["searches"]:
        pdf.para("No search has been run in this case.", 9)
    for s in data["searches"]:
        _search(pdf, case, s)
    exam_report.pdf_section(pdf)
    lineup_report.pdf_section(pdf)
    watch_report.pdf_section(pdf)
    _generated(pdf, case)
    _attachments_and_models(pdf)
    _audit_log(pdf)
    return bytes(pdf.output())
