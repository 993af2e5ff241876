"""Case report export: PDF, HTML or JSON from one gathered content, written atomically and audited."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from engine.cases.db import now_iso
from engine.cases.report_data import build_report_data
from engine.cases.report_html import render_html
from engine.cases.store import Case, resolve_user
from engine.errors import CaseError
from engine.fsutil import atomic_write_bytes, sha256_bytes

REPORT_FORMATS = ("pdf", "html", "json")


def build_report(case: Case, fmt: str, *, top_n: int | None = None, generated_at: str | None = None) -> bytes:
    """The report's bytes without writing or auditing anything (same case + time stamp → same bytes).

    Args:
        fmt: "pdf", "html" or "json".
        top_n: candidates per search to include (None: all stored).
        generated_at: ISO time stamp printed on the report (default now).
    """
    if fmt not in REPORT_FORMATS:
        raise CaseError(f"Unknown report format {fmt!r}; use one of {', '.join(REPORT_FORMATS)}.")
    if top_n is not None and top_n < 1:
        raise CaseError("top_n must be at least 1.")
    data = build_report_data(case, top_n=top_n, generated_at=generated_at)
    if fmt == "json":
        return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    if fmt == "html":
        return render_html(data, case)
    from engine.cases.report_pdf import render_pdf  # lazy: fpdf2 loads only when a PDF is wanted

    return render_pdf(data, case)


def export_report(case: Case, fmt: str, out: str | os.PathLike[str] | None = None, *, top_n: int | None = None,
                  user: str | None = None) -> Path:
    """Write a report (default: into the case's ``reports/`` folder) and record it in the audit log.

    The audit entry carries the report's SHA-256, so a printed or e-mailed report can later be matched
    to the case state it showed. A read-only case (one that does not verify) is refused before any
    file is written, so no report exists that its log does not name.
    """
    case.check_writable()
    generated_at = now_iso()
    data = build_report(case, fmt, top_n=top_n, generated_at=generated_at)
    if out is None:
        stamp = re.sub(r"[^0-9T]", "", generated_at)
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", case.info.case_number)
        target = case.folder / "reports" / f"report_{name}_{stamp}.{fmt}"
    else:
        target = Path(out).expanduser()
    atomic_write_bytes(target, data)
    digest = sha256_bytes(data)
    with case.write():
        case.log("report.export", f"case:{case.case_id}", user=resolve_user(user), outputs={"report": digest},
                 details={"format": fmt, "file": target.name, "top_n": top_n, "generated_at": generated_at})
    return target
