"""A second examiner's review done on their own workstation, returned as a signed review file.

The reviewer imports the exported archive on their workstation, reviews it there (blind first if they
wish, :func:`review.record_blind_review`) and writes a review file signed with their own examiner
key. It covers the audit head they reviewed (the head the archive carried), the decisions they
reviewed, their blind decisions and where those differ, and their statement and scope. The case's
own workstation imports it only after checking its signature, that the head it names is one of the
case's own entries, and that the reviewer's key made none of the decisions reviewed; the whole
signed file is kept in the sign-off's audit entry, so ``case verify`` re-checks it forever after.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine import examiners
from engine.cases import authorship, review
from engine.cases.db import now_iso
from engine.cases.store import Case, resolve_user
from engine.errors import CaseError

FORMAT = "sketchface-review"


def reviewed_head(case: Case) -> tuple[int, str]:
    """The head a review on this copy covers: the head the imported archive carried, else the current one."""
    entries = case.audit_entries()
    for e in reversed(entries):
        sig = e.details.get("archive_signature") if e.action == "case.import" else None
        if isinstance(sig, dict) and sig.get("head"):
            return int(sig.get("count") or 0), str(sig["head"])
    if not entries:
        raise CaseError("The case has no audit entries to review.")
    return entries[-1].seq, entries[-1].hash


def make_review_file(case: Case, *, statement: str, scope: str = "", role: str = "second examiner",
                     search_id: int | None = None) -> dict[str, Any]:
    """The acting examiner's signed review of this copy of a case (see the module docstring)."""
    reviewer = examiners.require_current()
    author = reviewer.author()
    if not statement.strip():
        raise CaseError("A review states what the reviewer found: give --statement in your own words.")
    review._refuse_own_decisions(case, author, search_id)
    report = case.verify()
    if not report.ok:
        raise CaseError("This copy of the case does not verify; it cannot be reviewed.",
                        hint="Run 'sketchface case verify' to see what was altered.")
    decided, undecided = review.decisions_in_scope(case, search_id)
    review._refuse_unscoped(decided, undecided, scope)
    blind = review._blind_review_of(case, reviewer.fingerprint, review._searches_covered(case, search_id))
    count, head = reviewed_head(case)
    body: dict[str, Any] = {
        "format": FORMAT, "v": 1, "case_id": case.case_id, "case_number": case.info.case_number,
        "audit_count": count, "audit_head": head, "search_id": search_id, "role": role,
        "statement": statement.strip(), "scope": scope.strip(), "undecided": undecided,
        "decisions_reviewed": decided, "blind_decisions": blind,
        "disagreements": review.disagreements(decided, blind), "reviewer": author, "signed_at": now_iso()}
    body["signature"] = examiners.sign(reviewer, authorship.REVIEW_PURPOSE, body)
    return body


def write_review_file(data: dict[str, Any], out: Path) -> Path:
    """Write a review file (JSON) for the examiner to send back."""
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return out


def read_review_file(path: Path) -> dict[str, Any]:
    """A review file's content, or a CaseError saying why it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CaseError(f"The review file {path} cannot be read ({exc}).") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CaseError(f"{path} is not a SketchFace review file.")
    return data


def import_review(case: Case, data: dict[str, Any], *, user: str | None = None) -> tuple[review.SignOff, str, str]:
    """Record a returned review file as a sign-off; (sign-off, trust label, note).

    Refused when its signature does not hold, when it is for another case, when the head it names is
    not one of this case's own entries, when the reviewer's key made any decision reviewed, and when
    it covers undecided candidates without a scope. A key on no trust list is accepted but labelled
    *unknown key* here, in ``case verify`` and in the report.
    """
    if not authorship.review_signature_ok(data):
        raise CaseError("The review file's signature does not hold for the reviewer it names: it was altered "
                        "after it was signed, or signed by another key. Refused.")
    if data.get("case_id") != case.case_id:
        raise CaseError(f"The review file is for case {data.get('case_id')}, not {case.case_id}. Refused.")
    try:
        count, head = int(data.get("audit_count") or 0), str(data.get("audit_head") or "")
    except (TypeError, ValueError):
        raise CaseError("The review file names no usable audit head. Refused.") from None
    if not any(e.seq == count and e.hash == head for e in case.audit_entries()):
        raise CaseError(f"The review file covers audit head {count}:{head}, which is not one of this case's own "
                        "entries: it reviewed another record. Refused.")
    reviewer = data["reviewer"]
    search_id = data.get("search_id")
    sid = int(search_id) if isinstance(search_id, int) else None
    review._refuse_own_decisions(case, reviewer, sid)
    if int(data.get("undecided") or 0) and not str(data.get("scope") or "").strip():
        raise CaseError("The review covers undecided candidates and states no scope. Refused.")
    lab, note, finding = examiners.label(str(reviewer.get("fingerprint")), str(data.get("signed_at", "")))
    if finding:
        raise CaseError(f"The review file is signed by a revoked key: {note}. Refused.")
    report = case.verify()
    if not report.ok:
        raise CaseError("The case's audit chain does not verify; the review cannot be recorded.")
    with case.write() as conn:
        cur = conn.execute("INSERT INTO signoffs (examiner, role, statement, search_id, audit_count, audit_head, "
                           "signed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (str(reviewer.get("name")), str(data.get("role") or "second examiner"),
                            str(data.get("statement") or ""), sid, count, head, str(data.get("signed_at"))))
        so_id = int(cur.lastrowid or 0)
        case.log("signoff.record", f"search:{sid}" if sid else f"case:{case.case_id}", user=resolve_user(user),
                 inputs={"audit_head": head},
                 details={"role": data.get("role"), "statement": data.get("statement"), "audit_count": count,
                          "signoff_id": so_id, "reviewer": reviewer, "scope": data.get("scope", ""),
                          "undecided": data.get("undecided", 0), "decisions_reviewed": data.get("decisions_reviewed"),
                          "blind": bool(data.get("blind_decisions")), "disagreements": data.get("disagreements"),
                          "review_file": data, "trust": lab},
                 records=[("signoffs", so_id)])
    so = next(s for s in review.list_signoffs(case) if s.id == so_id)
    return so, lab, note
