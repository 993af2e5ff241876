"""``case resign``: an examiner re-signs the entries of a case written before examiner profiles existed.

Those entries cannot be changed (the chain and the workstation's head signature cover them), so
re-signing appends one entry, signed with the acting examiner's key, that lists every unsigned
entry by number and hash: the examiner vouches for them from that moment on, and ``case verify``
says so, naming who re-signed them and when, instead of calling them unsigned.
"""

from __future__ import annotations

from typing import Any

from engine.cases import audit, authorship
from engine.cases.store import Case, resolve_user
from engine.errors import CaseError


def unsigned_entries(case: Case) -> list[audit.AuditEntry]:
    """The entries that carry no examiner's signature and no later re-signing covers."""
    entries = case.audit_entries()
    covered: set[tuple[int, str]] = set()
    for e in entries:
        if e.action == authorship.RESIGN_ACTION and authorship.entry_signature_ok(case.case_id, e):
            covered |= {(int(r.get("seq", 0) or 0), str(r.get("hash", "")))
                        for r in e.details.get("resigned", []) or [] if isinstance(r, dict)}
    return [e for e in entries if audit.AUTHOR not in e.details and (e.seq, e.hash) not in covered]


def resign(case: Case, *, reason: str = "", user: str | None = None) -> dict[str, Any]:
    """Re-sign every unsigned entry under the acting examiner profile; what was re-signed."""
    report = case.verify()
    if not report.ok:
        raise CaseError("The case does not verify; an examiner cannot vouch for a record that was altered.",
                        hint=f"Run 'sketchface case verify {case.case_id}' to see every finding.")
    todo = unsigned_entries(case)
    if not todo:
        raise CaseError("Every entry of this case already carries an examiner's signature; nothing to re-sign.")
    rows = [{"seq": e.seq, "hash": e.hash, "action": e.action, "user": e.user, "ts": e.ts} for e in todo]
    with case.write():
        entry = case.log(authorship.RESIGN_ACTION, f"case:{case.case_id}", user=resolve_user(user),
                         details={"resigned": rows, "reason": reason or "written before examiner profiles existed",
                                  "head_at_resign": {"count": report.count, "head": report.head}})
    return {"resigned": len(rows), "first": rows[0]["seq"], "last": rows[-1]["seq"], "entry": entry.seq,
            "by": entry.details.get(audit.AUTHOR), "at": entry.ts}
