"""The HTML case report: one self-contained file (inline CSS, images as data URIs), every value escaped.

Every value that comes from the case database goes through :func:`_e` (ids, digests, counts and
scores included: a tampered database can put text anywhere), and a Content-Security-Policy forbids
scripts, remote loads and forms, so even a missed value could not run.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from engine.cases import exam_report, lineup_report, watch_report
from engine.cases.images import SYNTHETIC_STAMP, display_copy, png_bytes
from engine.cases.report_data import disagreement_lines
from engine.cases.store import Case
from engine.environment import describe_software
from engine.errors import CaseError

_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;font-size:13px;margin:24px auto;max-width:1000px;color:#111}
h1{font-size:24px;margin-bottom:2px} h2{border-bottom:1px solid #ccc;margin-top:28px;font-size:18px}
h3{font-size:15px;margin-bottom:6px} table{border-collapse:collapse;width:100%;margin:6px 0}
td,th{border-bottom:1px solid #ddd;padding:3px 5px;text-align:left;vertical-align:top}
th{background:#eee} td.k{color:#555;width:170px} .mono{font-family:"DejaVu Sans Mono",monospace;font-size:11px;
word-break:break-all} .limits{background:#fff6d6;border:1px solid #d6aa3c;padding:8px 14px}
.ok{color:#167832;font-weight:bold} .bad{color:#b21818;font-weight:bold} .grid{display:flex;flex-wrap:wrap;gap:14px}
.fig{width:300px} .fig img{max-width:300px;max-height:300px;display:block} .stamp{color:#b21818;font-weight:bold}
.possible{color:#167832;font-weight:bold} .excluded{color:#666} .note{color:#555} img.thumb{width:48px;height:48px}
"""


CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")



def _signoff_detail_html(so: dict[str, Any]) -> str:
    """Who signed (identifier, key fingerprint, trust label), the scope, and every disagreement."""
    rows = []
    if so.get("reviewer"):
        rows.append(f"Signed by {_e(so['reviewer']['text'])}"
                    + (" with a review file returned from their workstation" if so.get("returned_review_file")
                       else ""))
    if so.get("scope"):
        rows.append(f"Scope of the review: {_e(so['scope'])}")
    if so.get("blind"):
        lines = disagreement_lines(so)
        rows.append("Blind verification: " + ("; ".join(_e(x) for x in lines) if lines else
                                                "no disagreement with the first examiner's decisions"))
    return "".join(f'<p class="note">{r}</p>' for r in rows)

def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: Any, spec: str) -> str:
    """A number formatted with ``spec``, escaped; a tampered non-number is shown as it is, escaped."""
    try:
        return _e(format(value, spec))
    except (TypeError, ValueError):
        return _e(value)


def _share(c: dict[str, Any]) -> str:
    """The calibration share beside a score, " (63 %)", or nothing without a calibration."""
    share = c.get("calibration_share")
    return "" if share is None else f" ({_fmt(100 * share, '.0f')} %)"


def _img(case: Case | None, path: str | None, sha: str | None, side: int, *, stamp: bool = False,
         cls: str = "") -> str:
    if case is None or not path:
        return ""
    try:
        im = display_copy(case.read_file(path, sha), side, stamp=stamp)
    except CaseError:
        return '<span class="bad">[image missing or altered]</span>'
    uri = "data:image/png;base64," + base64.b64encode(png_bytes(im)).decode("ascii")
    alt = SYNTHETIC_STAMP if stamp else "image"
    return f'<img class="{cls}" alt="{_e(alt)}" src="{uri}">'


def _kv(pairs: list[tuple[str, Any]], mono: tuple[str, ...] = ()) -> str:
    rows = "".join(f'<tr><td class="k">{_e(k)}</td><td class="{"mono" if k in mono else ""}">'
                   f'{_e(v).replace(chr(10), "<br>")}</td></tr>' for k, v in pairs)
    return f"<table>{rows}</table>"


def _search(case: Case | None, s: dict[str, Any]) -> str:
    m = s["manifest"]
    emb = m.get("embedder") or {}
    pairs: list[tuple[str, Any]] = [
        ("Run", f"{s['created_at']} by {s['created_by']}"), ("Review mode", s["mode"]),
        ("Query images", "\n".join(f"{q['kind']} ×{html.unescape(_fmt(q['weight'], 'g'))} {q['sha256']}"
                                   for q in s["queries"])),
        ("Embedder", f"{emb.get('kind')} {emb.get('sha256') or '—'}"), ("ArcFace model", m.get("arcface_sha256")),
        ("Galleries", "\n".join(f"{g.get('name', g['id'])} ({g['id']}): content version {g.get('content_version')}, "
                                f"{g.get('face_count')} faces" for g in m.get("galleries", []))),
        ("Search mode", s["search_mode"]),
        ("Filters", "; ".join(str(f) for f in m["filters"]) if m.get("filters") else "none"),
        ("k / grouping", f"k={m.get('k')}, grouped by subject: {'yes' if m.get('group_by_subject') else 'no'}"),
        ("Engine version", m.get("engine_version")), ("Software", describe_software(m.get("software") or {})),
        ("Manifest SHA-256", s["manifest_sha256"]),
        ("Results SHA-256", s["results_sha256"]),
    ]
    if s["rerun"] is not None:
        verdict = "identical result list" if s["rerun"]["identical"] else "result list CHANGED"
        pairs.insert(1, ("Re-run of", f"search {s['rerun_of']}: {verdict}\n" + "\n".join(s["rerun"]["changes"])))
    out = [f"<h3>Search {_e(s['id'])}{': ' + _e(s['label']) if s['label'] else ''}</h3>",
           _kv(pairs, ("Query images", "Embedder", "ArcFace model", "Manifest SHA-256", "Results SHA-256"))]
    if s["queries"]:  # the images that were searched, as stored in the case
        out.append('<div class="grid">' + "".join(
            f'<div class="fig">{_img(case, q["path"], q["sha256"], 600)}<div>'
            f'{_e(q["caption"]).replace(chr(10), "<br>")}</div></div>' for q in s["queries"]) + "</div>")
    if s["baseline"]:
        out.append(f'<p class="bad">{_e(s["baseline_note"])}</p>')
    hidden = s["scores_hidden"]
    out.append(f"<p>{_e(s['shown_candidates'])} of {_e(s['total_candidates'])} candidates"
               f"{' in blind order; ranks and scores withheld' if hidden else ''}.</p>")
    if not hidden and s.get("calibration"):
        out.append(f"<p>{_e(s['calibration'])}</p>")
    if not s["candidates"]:
        return "".join(out)
    out.append(f"<table><tr><th>{'Pos.' if hidden else 'Rank'}</th><th>Face</th><th>Score</th>"
               "<th>Gallery / face</th><th>Subject</th><th>Photo</th><th>Decision</th><th>Note · by</th></tr>")
    for c in s["candidates"]:
        by = f" · {c['decided_by']} {c['decided_at']}" if c["decided_by"] else ""
        if c.get("decided_by_key"):
            by += f" · {c['decided_by_key']['text']}"
        out.append(
            f"<tr><td>{_e(c['position'] if hidden else c['rank'])}</td>"
            f"<td>{_img(case, c['thumbnail_path'], c['thumbnail_sha256'], 96, cls='thumb')}</td>"
            f"<td>{'withheld' if hidden else _fmt(c['score'], '.4f')}{_share(c) if not hidden else ''}</td>"
            f"<td>{_e(c['gallery_name'] or c['gallery_id'])} / {_e(c['face_id'])}</td><td>{_e(c['subject_id'] or '—')}</td>"
            f"<td class=\"mono\">{_e(c['photo_path'])}<br>{_e(c['photo_sha256'])}</td>"
            f"<td class=\"{_e(c['decision'])}\">{_e(str(c['decision']).replace('_', ' '))}</td>"
            f"<td class=\"note\">{_e(c['note'])}{_e(by)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _signature_rows(sig: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if not sig:
        return [("Head signature", "NONE: the head is not signed by a workstation key")]
    who = "this workstation" if sig.get("this_workstation") else "ANOTHER workstation (compare the key below)"
    state = "valid" if sig.get("valid") else "DOES NOT VERIFY"
    return [("Head signed", f"{state}; entry #{sig.get('count')} signed by {who}"),
            ("Head signature (Ed25519)", sig.get("signature")), ("Workstation public key", sig.get("public_key")),
            ("Key fingerprint", sig.get("fingerprint"))]


def _import_para(i: dict[str, Any]) -> str:
    who = "this workstation" if i.get("this_workstation") else "another workstation"
    return (f'<p class="note">Imported at entry #{_e(i.get("seq"))} ({_e(i.get("ts"))}) from archive '
            f'<span class="mono">{_e(i.get("archive_sha256"))}</span>, whose head (entry #{_e(i.get("signed_count"))}) '
            f'was signed by {who}: key <span class="mono">{_e(i.get("fingerprint"))}</span>.</p>')


def render_html(data: dict[str, Any], case: Case | None) -> bytes:
    """The report as one HTML document (UTF-8 bytes)."""
    c, a = data["case"], data["audit"]
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_e(CSP)}\"><title>Case report "
             f"{_e(c['case_number'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>Case report — {_e(c['case_number'])}</h1><p>{_e(c['title'])}</p>",
             _kv([("Case number", c["case_number"]), ("Case id", c["case_id"]), ("Examiner", c["examiner"]),
                  ("Witnesses", ", ".join(c["witnesses"]) or "—"), ("Incident date", c["incident_date"] or "—"),
                  ("Status", c["status"]), ("Opened", c["created_at"]), ("Last updated", c["updated_at"]),
                  ("Notes", c["notes"] or "—"), ("Report generated", data["report"]["generated_at"]),
                  ("Generated by", data["report"]["generator"])]),
             '<div class="limits"><h3>Limitations — read before using this report</h3><ul>'
             + "".join(f"<li>{_e(x)}</li>" for x in data["limitations"]) + "</ul></div>",
             "<h2>Audit chain</h2>",
             f'<p class="{"ok" if a["ok"] else "bad"}">{"INTACT" if a["ok"] else "BROKEN"}</p>',
             _kv([("Entries", a["count"]), ("Head hash", a["head"]), *_signature_rows(a.get("signature")),
                  ("Anchors checked", ", ".join(a["anchors_checked"]))],
                 ("Head hash", "Head signature (Ed25519)", "Workstation public key", "Key fingerprint")),
             "".join(f'<p class="bad">{_e(f["message"])}</p>' for f in a["findings"]),
             f'<p class="note">To check this case later against this report: <span class="mono">'
             f'{_e(a.get("check_command", ""))}</span> (the head printed here must still be in the log, and the '
             f'head signature must verify with the public key printed here).</p>',
             "".join(_import_para(i) for i in a.get("imports", [])),
             "<h2>Second-examiner sign-off</h2>"]
    parts += [f"<p>{_e(so['examiner'])} ({_e(so['role'])}) signed off "
              f"{'search ' + _e(so['search_id']) if so['search_id'] else 'the whole case'} on {_e(so['signed_at'])}, "
              f"covering entries 1–{_e(so['audit_count'])} (head <span class=\"mono\">{_e(so['audit_head'])}</span>). "
              f"{_e(so['statement'])}</p>" + _signoff_detail_html(so)
              for so in data["signoffs"]] or ["<p>No sign-off is recorded.</p>"]
    parts.append("<h2>Sketches</h2><div class=\"grid\">")
    parts += [f'<div class="fig">{_img(case, v["path"], v["sha256"], 600)}<div>{_e(v["name"])} v{_e(v["version"])} · '
              f'witness {_e(v["witness"])}<br>{_e(v["created_at"])}<br><span class="mono">{_e(v["sha256"])}</span>'
              f"</div></div>" for v in data["sketches"]] or [
                  f"<p>{_e(data.get('sketches_note') or 'No sketch is stored in this case.')}</p>"]
    parts.append("</div><h2>Searches</h2>")
    parts += [_search(case, s) for s in data["searches"]] or ["<p>No search has been run in this case.</p>"]
    parts.append(exam_report.html_section(data))
    parts.append(lineup_report.html_section(data))
    parts.append(watch_report.html_section(data))
    if data["generated_images"]:
        parts.append("<h2>Generated images (synthetic)</h2><div class=\"grid\">")
        parts += [f'<div class="fig">{_img(case, g["path"], g["sha256"], 600, stamp=True)}'
                  f'<div class="stamp">{_e(g["stamp"])}</div><div>Generated image {_e(g["id"])} from '
                  f'{_e(g["parent_label"])}<br><span class="mono">{_e(g["sha256"])}</span></div>'
                  f'<pre class="mono">{_e(json.dumps(g["params"], indent=1, sort_keys=True, ensure_ascii=False))}'
                  f"</pre></div>" for g in data["generated_images"]]
        parts.append("</div>")
    if data["attachments"]:
        parts.append("<h2>Attachments</h2>" + _kv([(x["name"], f"{html.unescape(_fmt(x['size'], ','))} bytes · "
                                                              f"{x['sha256']}")
                                                   for x in data["attachments"]]))
    parts.append("<h2>Models: provenance and licences</h2>")
    parts += [f"<h3>{_e(m['title'])}</h3>" + _kv([("Model id", m["model_id"]), ("Used for", ", ".join(m["used_for"])),
                                                 ("File SHA-256", "\n".join(m["sha256"]) or "not recorded"),
                                                 ("Licence", m["licence"]), ("Source", m["source"])],
                                                ("File SHA-256",)) for m in data["models"]]
    parts.append("<h2>Appendix: audit log</h2><table><tr><th>#</th><th>Time</th><th>User</th><th>Action</th>"
                 "<th>Object</th></tr>")
    parts += [f"<tr><td>{_e(e['seq'])}</td><td>{_e(e['ts'])}</td><td>{_e(e['user'])}</td><td>{_e(e['action'])}</td>"
              f"<td>{_e(e['object'])}</td></tr>" for e in a["entries"]]
    parts.append("</table></body></html>\n")
    return "".join(parts).encode("utf-8")
