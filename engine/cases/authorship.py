"""Who made each audit entry: checking every examiner signature and labelling the keys that made them.

Each entry written under an examiner profile carries its author (name, identifier, key fingerprint,
public key, OS account) and that key's signature over the entry (:func:`audit.signed_body`). The
chain and the workstation's head signature prove the log is unaltered; these signatures prove which
examiner's key stated each entry, so a decision re-signed with another profile's key, or an entry
whose author was swapped, is a finding even where the chain was recomputed.

Entries written before examiner profiles existed carry no author; they are named plainly as such
until ``sketchface case resign`` records, in a signed entry, which of them an examiner re-signed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine import examiners, workstation_key
from engine.cases import audit

AUDIT_ENTRY_PURPOSE = "audit-entry"
REVIEW_PURPOSE = "case-review"
RESIGN_ACTION = "case.resign"


@dataclass
class Authorship:
    """What the examiner signatures of a log say: counts, each key with its label, notes and findings."""

    signed: int = 0
    legacy: int = 0  # entries from before examiner signatures
    resigned: int = 0  # of those, how many a later signed 'case.resign' entry covers
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    findings: list[audit.Finding] = field(default_factory=list)
    by_entry: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> author + label

    def to_dict(self) -> dict[str, Any]:
        return {"signed": self.signed, "legacy": self.legacy, "resigned": self.resigned,
                "keys": list(self.keys.values()), "notes": list(self.notes)}


def entry_signature_ok(case_id: str, e: audit.AuditEntry) -> bool:
    """True when the entry's examiner signature is its stated author's key over exactly this entry."""
    author = e.details.get(audit.AUTHOR)
    sig = e.details.get(audit.AUTHOR_SIGNATURE)
    if not isinstance(author, dict) or not isinstance(sig, str):
        return False
    pub = str(author.get("public_key", ""))
    if workstation_key.key_fingerprint(pub) != author.get("fingerprint"):
        return False
    body = audit.signed_body(case_id, e.seq, e.ts, e.user, e.action, e.object, e.inputs, e.outputs, e.details,
                             e.prev_hash)
    return workstation_key.verify(AUDIT_ENTRY_PURPOSE, body, sig, pub)


def review_signature_ok(review: dict[str, Any]) -> bool:
    """True when a review file's signature is its stated reviewer's key over everything else it says."""
    reviewer = review.get("reviewer")
    sig = review.get("signature")
    if not isinstance(reviewer, dict) or not isinstance(sig, str):
        return False
    pub = str(reviewer.get("public_key", ""))
    if workstation_key.key_fingerprint(pub) != reviewer.get("fingerprint"):
        return False
    return workstation_key.verify(REVIEW_PURPOSE, {k: v for k, v in review.items() if k != "signature"}, sig, pub)


def describe(author: dict[str, Any] | None) -> str:
    """'Name (identifier), key 1a2b…' for terminals and reports."""
    if not author:
        return "no examiner signature (entry from before examiner profiles)"
    return f"{author.get('name')} ({author.get('identifier')}), key {str(author.get('fingerprint'))[:16]}"


def _note_key(out: Authorship, author: dict[str, Any], seq: int, ts: str,
              label: Callable[[str, str], tuple[str, str, bool]]) -> dict[str, Any]:
    fp = str(author.get("fingerprint", ""))
    lab, note, finding = label(fp, ts)
    row = out.keys.setdefault(fp, {"fingerprint": fp, "name": author.get("name"),
                                   "identifier": author.get("identifier"), "label": lab, "note": note,
                                   "entries": 0})
    row["entries"] += 1
    if lab == examiners.REVOKED and not finding:
        row["before_revocation"] = int(row.get("before_revocation", 0)) + 1
    if finding:  # the worst one is what the key's line says
        row["label"], row["note"] = lab, note
        out.findings.append(audit.Finding("signature", seq, None,
                                          f"Entry #{seq} was signed by examiner key {fp[:16]} after that key was "
                                          f"revoked: {note}."))
    return {"author": author, "label": lab, "note": note}


def check(case_id: str, entries: list[audit.AuditEntry], *, skip: set[int | None] | None = None) -> Authorship:
    """Check every entry's examiner signature, and every imported review file's; label each key.

    ``skip``: entries the chain check already found edited or moved (one finding each is enough).
    """
    out = Authorship()
    skip = skip or set()
    resigned: set[tuple[int, str]] = set()
    for e in entries:
        if e.action == RESIGN_ACTION and entry_signature_ok(case_id, e):
            for r in e.details.get("resigned", []) or []:
                if isinstance(r, dict):
                    resigned.add((int(r.get("seq", 0) or 0), str(r.get("hash", ""))))
    signing_began = False
    label = examiners.labeller()  # the trust list and profiles read once for the whole record
    for e in entries:
        author = e.details.get(audit.AUTHOR)
        if not isinstance(author, dict):
            if signing_began:
                out.findings.append(audit.Finding("signature", e.seq, None,
                                                  f"Entry #{e.seq} ('{e.action}') names no examiner although "
                                                  "entries before it are examiner-signed: it was not written "
                                                  "through SketchFace."))
                continue
            out.legacy += 1
            if (e.seq, e.hash) in resigned:
                out.resigned += 1
            continue
        signing_began = True
        if e.seq in skip:
            continue
        if not entry_signature_ok(case_id, e):
            out.findings.append(audit.Finding("signature", e.seq, None,
                                              f"Entry #{e.seq} ('{e.action}') does not carry a valid signature by "
                                              f"the examiner it names ({describe(author)}): it was re-signed or "
                                              "altered after the fact."))
            continue
        out.signed += 1
        out.by_entry[e.seq] = _note_key(out, author, e.seq, e.ts, label)
        review = e.details.get("review_file")
        if isinstance(review, dict):
            if not review_signature_ok(review):
                out.findings.append(audit.Finding("signature", e.seq, None,
                                                  f"The review file imported in entry #{e.seq} no longer carries "
                                                  "a valid signature by the reviewer it names."))
            else:
                reviewer = review["reviewer"]
                info = _note_key(out, reviewer, e.seq, str(review.get("signed_at", e.ts)), label)
                out.by_entry[e.seq] = {**out.by_entry[e.seq], "reviewer": info}
    if out.legacy:
        left = out.legacy - out.resigned
        if left:
            out.notes.append(f"{left} audit entr{'y' if left == 1 else 'ies'} from before examiner profiles carry no "
                             "examiner's signature: the record shows which workstation wrote them, not which "
                             f"person. Run 'sketchface case resign {case_id}' to have an examiner re-sign them.")
        if out.resigned:
            out.notes.append(f"{out.resigned} entr{'y' if out.resigned == 1 else 'ies'} from before examiner "
                             "profiles were re-signed later by the examiner named in the 'case.resign' entry.")
    for k in out.keys.values():
        if k.get("before_revocation"):
            out.notes.append(f"Key {k['fingerprint'][:16]} of {k['name']} was revoked later; its "
                             f"{k['before_revocation']} signature(s) made before the revocation stay valid.")
    return out
