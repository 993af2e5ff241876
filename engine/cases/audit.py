"""The hash-chained audit log of a case: appending entries and locating any tampering.

Each entry's hash covers its content, its sequence number, the case id and the previous entry's
hash, so editing, deleting, inserting or reordering an entry breaks the chain at that place. A
chain alone cannot show that entries were cut off its *end*, so the count and head hash are also
kept outside the log table ("anchors"): in the case's meta table (same transaction), in a sidecar
file beside the database, in the workstation's case registry, in every exported archive and on
every printed report. :func:`verify` checks the log against each anchor it is given.

An attacker who can rewrite every entry *and* every unkeyed anchor is caught by the head's
signature with the workstation key, which no case folder holds (:mod:`engine.cases.anchor`); one
who also holds that key is caught only by copies kept elsewhere: exports and printed reports.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.cases.db import canonical_json, get_meta, now_iso, set_meta

ANCHOR_META_KEY = "audit_anchor"
AUTHOR = "author"  # details key: the examiner who made the entry (see :mod:`engine.examiners`)
AUTHOR_SIGNATURE = "author_signature"  # details key: that examiner's signature over the entry
_SEQ_SEARCH_WINDOW = 64  # how far from its claimed number an edited entry's true number is looked for


@dataclass(frozen=True)
class AuditEntry:
    """One entry as stored: ``pos`` is its storage position, ``seq`` its number in the chain."""

    pos: int
    seq: int
    ts: str
    user: str
    action: str
    object: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Anchor:
    """A record, kept outside the log table, that the log had ``count`` entries ending in ``head``.

    ``exact`` anchors are written in the same transaction as the log (the meta row), so the log must
    end exactly there; the others may lag behind a log that legitimately grew since.
    """

    source: str
    count: int
    head: str
    exact: bool = False
    problem: str = ""  # set when the record failed its authentication: reported, never compared


@dataclass(frozen=True)
class Finding:
    """One problem found in the log: its kind, the entry number and storage position, and a sentence."""

    kind: str  # edited | replaced | deleted | reordered | inserted | truncated | anchor | record | schema | signature
    seq: int | None
    position: int | None
    message: str


@dataclass
class AuditReport:
    """The outcome of :func:`verify`: ok, entry count, head hash, findings and anchors compared."""

    ok: bool
    count: int
    head: str
    findings: list[Finding] = field(default_factory=list)
    anchors_checked: list[str] = field(default_factory=list)
    signature: dict[str, Any] | None = None  # the head's workstation signature as checked (see integrity)
    examiners: dict[str, Any] | None = None  # the entries' examiner signatures as checked (see authorship)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "count": self.count, "head": self.head,
                "findings": [asdict(f) for f in self.findings], "anchors_checked": self.anchors_checked,
                "signature": self.signature, "examiners": self.examiners}

    def summary(self) -> str:
        """One line for people: intact with its head, or how many problems."""
        if self.ok:
            return f"Audit chain intact: {self.count} entries, head {self.head}."
        return f"Audit chain BROKEN: {len(self.findings)} problem(s) in {self.count} stored entries."


def genesis_hash(case_id: str) -> str:
    """The 'previous hash' of entry #1: binds the log to its case so logs cannot be swapped between cases."""
    return hashlib.sha256(f"sketchface-audit-genesis:{case_id}".encode()).hexdigest()


def entry_hash(case_id: str, seq: int, ts: str, user: str, action: str, obj: str, inputs: dict[str, Any],
               outputs: dict[str, Any], details: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 of an entry's canonical form: everything it says plus where it sits in the chain."""
    body = {"v": 1, "case_id": case_id, "seq": seq, "ts": ts, "user": user, "action": action,
            "object": obj, "inputs": inputs, "outputs": outputs, "details": details, "prev": prev_hash}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def read_anchor(conn: sqlite3.Connection) -> tuple[int, str] | None:
    """The (count, head) kept in the case's meta row, or None before the first entry."""
    raw = get_meta(conn, ANCHOR_META_KEY)
    if raw is None:
        return None
    data = json.loads(raw)
    return int(data["count"]), str(data["head"])


def signed_body(case_id: str, seq: int, ts: str, user: str, action: str, obj: str, inputs: dict[str, Any],
                outputs: dict[str, Any], details: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    """What an examiner's signature on an entry covers: all it says and where it sits, but the signature itself."""
    unsigned = {k: v for k, v in details.items() if k != AUTHOR_SIGNATURE}
    return {"case_id": case_id, "seq": seq, "ts": ts, "user": user, "action": action, "object": obj,
            "inputs": inputs, "outputs": outputs, "details": unsigned, "prev": prev_hash}


def append(conn: sqlite3.Connection, case_id: str, *, user: str, action: str, obj: str,
           inputs: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None,
           details: dict[str, Any] | None = None, author: dict[str, Any] | None = None,
           signer: Callable[[dict[str, Any]], str] | None = None) -> AuditEntry:
    """Append one entry; must run inside the write transaction of the change it records.

    The chain continues from the meta anchor (not from the last row), so an append never silently
    re-roots the chain onto a tampered tail. ``author`` (the acting examiner: name, identifier, key
    fingerprint and public key, OS account) is stored in the entry, and ``signer`` signs the entry's
    :func:`signed_body` with that examiner's key: the chain is then also the examiner's statement.
    """
    anchor = read_anchor(conn)
    count, prev = anchor if anchor is not None else (0, genesis_hash(case_id))
    seq = count + 1
    ts = now_iso()
    inputs, outputs, details = dict(inputs or {}), dict(outputs or {}), dict(details or {})
    if author is not None:
        details[AUTHOR] = dict(author)
        if signer is not None:
            details[AUTHOR_SIGNATURE] = signer(signed_body(case_id, seq, ts, user, action, obj, inputs, outputs,
                                                           details, prev))
    h = entry_hash(case_id, seq, ts, user, action, obj, inputs, outputs, details, prev)
    cur = conn.execute(
        "INSERT INTO audit (seq, ts, user, action, object, inputs, outputs, details, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, ts, user, action, obj, canonical_json(inputs), canonical_json(outputs),
         canonical_json(details), prev, h))
    set_meta(conn, ANCHOR_META_KEY, canonical_json({"count": seq, "head": h}))
    return AuditEntry(int(cur.lastrowid or 0), seq, ts, user, action, obj, inputs, outputs, details, prev, h)


def _load(value: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return {"<unreadable>": str(value)}
    return data if isinstance(data, dict) else {"<not an object>": data}


def _int(value: Any) -> int:
    """A stored number; a tampered non-number reads as 0, which no entry's hash accepts."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def read_entries(conn: sqlite3.Connection) -> list[AuditEntry]:
    """All stored entries in storage order (which is what a reader of the table sees)."""
    rows = conn.execute("SELECT * FROM audit ORDER BY pos").fetchall()
    return [AuditEntry(_int(r["pos"]), _int(r["seq"]), str(r["ts"]), str(r["user"]), str(r["action"]),
                       str(r["object"]), _load(r["inputs"]), _load(r["outputs"]), _load(r["details"]),
                       str(r["prev_hash"]), str(r["hash"])) for r in rows]


def _rehash(case_id: str, e: AuditEntry, seq: int) -> str:
    return entry_hash(case_id, seq, e.ts, e.user, e.action, e.object, e.inputs, e.outputs, e.details, e.prev_hash)


def _true_seqs(case_id: str, entries: list[AuditEntry], findings: list[Finding]) -> list[int | None]:
    """Which chain number each stored entry really holds, from its own hash.

    An entry whose content matches its hash under its own number is intact. One that matches under
    another number was renumbered or moved (a reorder); one that matches under none was edited.
    """
    out: list[int | None] = []
    for position, e in enumerate(entries, start=1):
        if _rehash(case_id, e, e.seq) == e.hash:
            out.append(e.seq)
            continue
        lo, hi = max(1, e.seq - _SEQ_SEARCH_WINDOW), e.seq + _SEQ_SEARCH_WINDOW
        found = next((s for s in range(lo, hi + 1) if s != e.seq and _rehash(case_id, e, s) == e.hash), None)
        if found is None:
            findings.append(Finding("edited", e.seq, position,
                                    f"Entry #{e.seq} (position {position}, action '{e.action}') was edited: "
                                    "its content no longer matches its hash."))
        else:
            findings.append(Finding("reordered", found, position,
                                    f"Entry #{found} ('{e.action}') was moved: it is stored at position "
                                    f"{position} under number #{e.seq}."))
        out.append(found)
    return out


def _check_order(entries: list[AuditEntry], seqs: list[int | None], findings: list[Finding]) -> None:
    """Report entries out of order, missing from the middle, or appearing twice."""
    known = [(s, pos) for pos, s in enumerate(seqs, start=1) if s is not None]
    in_order = sorted(known)
    for (s, pos), (want, _) in zip(known, in_order, strict=True):
        if s != want and not any(f.kind == "reordered" and f.position == pos for f in findings):
            findings.append(Finding("reordered", s, pos,
                                    f"Entry #{s} ('{entries[pos - 1].action}') is out of order: found at "
                                    f"position {pos}, where entry #{want} belongs."))
    seen: dict[int, int] = {}
    for s, pos in known:
        if s in seen:
            findings.append(Finding("inserted", s, pos, f"Entry #{s} appears twice (positions {seen[s]} and {pos})."))
        seen.setdefault(s, pos)
    # An edited entry still occupies the number it claims; only numbers nobody holds were deleted.
    claimed = {entries[pos].seq for pos, s in enumerate(seqs) if s is None}
    top = max(seen, default=0)
    for s in range(1, top + 1):
        if s not in seen and s not in claimed:
            findings.append(Finding("deleted", s, None, f"Entry #{s} is missing: it was deleted from the log."))


def _check_links(case_id: str, entries: list[AuditEntry], seqs: list[int | None], findings: list[Finding]) -> None:
    """Each intact entry must name the stored hash of the entry before it; a mismatch means that one was replaced."""
    by_seq = {s: entries[pos] for pos, s in enumerate(seqs) if s is not None}
    flagged = {f.seq for f in findings if f.kind in ("edited", "deleted")}
    for s, e in sorted(by_seq.items()):
        if s == 1:
            if e.prev_hash != genesis_hash(case_id):
                findings.append(Finding("replaced", 1, None, "Entry #1 does not start this case's chain: "
                                        "the log was replaced or belongs to another case."))
            continue
        before = by_seq.get(s - 1)
        if before is not None and e.prev_hash != before.hash and (s - 1) not in flagged:
            findings.append(Finding("replaced", s - 1, None,
                                    f"Entry #{s - 1} ('{before.action}') was rewritten with a recomputed hash: "
                                    f"entry #{s} recorded a different hash for it."))


def _check_anchors(entries: list[AuditEntry], seqs: list[int | None], anchors: list[Anchor],
                   findings: list[Finding]) -> None:
    by_seq = {s: entries[pos] for pos, s in enumerate(seqs) if s is not None}
    top = max(by_seq, default=0)
    for a in anchors:
        if a.problem:  # reported by the integrity check, after the signature (see integrity._check_anchor_records)
            continue
        if a.count < 0:  # a head given without its count, and no stored entry has it
            findings.append(Finding("anchor", None, None,
                                    f"The head {a.head} from the {a.source} is not in this log: the log was "
                                    "rewritten, or the head belongs to another case."))
        elif a.count > top:
            first = top + 1
            span = f"#{first}" if first == a.count else f"#{first}–#{a.count}"
            findings.append(Finding("truncated", first, None,
                                    f"Entries {span} are missing from the end of the log (truncated): the "
                                    f"{a.source} records {a.count} entries, the log ends at #{top}."))
        elif a.count and (e := by_seq.get(a.count)) is not None and e.hash != a.head:
            findings.append(Finding("anchor", a.count, None,
                                    f"Entry #{a.count} does not match the head hash kept in the {a.source}: "
                                    "the log was rewritten from there on."))
        elif a.exact and a.count < top:
            findings.append(Finding("inserted", a.count + 1, None,
                                    f"Entries after #{a.count} were added without going through the case store "
                                    f"(the {a.source} records {a.count} entries, the log has {top})."))


def verify_from(case_id: str, entries: list[AuditEntry], anchors: list[Anchor],
                trusted: tuple[int, str] | None) -> AuditReport:
    """:func:`verify`, re-hashing only the entries after ``trusted``, a (count, head) known good.

    ``trusted`` comes from a record this workstation signed when it last verified or wrote the log
    (:mod:`engine.cases.ledger`). When the stored log is numbered plainly (positions and numbers 1..n
    in order), still holds that head at that number, and every later entry re-hashes and links, the
    entries before it need not be hashed again: an edit there either breaks the link to the trusted
    entry or stays visible to a full :func:`verify`; it cannot be signed over. Anything irregular
    falls back to the full check, which also names what is wrong.
    """
    if trusted is None or not _plain_tail(case_id, entries, trusted):
        return verify(case_id, entries, anchors)
    findings: list[Finding] = []
    seqs: list[int | None] = [e.seq for e in entries]
    _check_anchors(entries, seqs, anchors, findings)
    head = entries[-1].hash if entries else genesis_hash(case_id)
    return AuditReport(ok=not findings, count=len(entries), head=head, findings=findings,
                       anchors_checked=[a.source for a in anchors])


def _plain_tail(case_id: str, entries: list[AuditEntry], trusted: tuple[int, str]) -> bool:
    count, head = trusted
    if count < 1 or count > len(entries):
        return False
    if any(e.pos != i or e.seq != i for i, e in enumerate(entries, start=1)):
        return False
    start = entries[count - 1]
    if start.hash != head or _rehash(case_id, start, start.seq) != head:
        return False
    prev = head
    for e in entries[count:]:
        if e.prev_hash != prev or _rehash(case_id, e, e.seq) != e.hash:
            return False
        prev = e.hash
    return True


def verify(case_id: str, entries: list[AuditEntry], anchors: list[Anchor]) -> AuditReport:
    """Check the chain and every anchor; return each problem with the entry it concerns.

    Args:
        case_id: the case the log belongs to (part of every hash).
        entries: stored entries in storage order (:func:`read_entries`).
        anchors: count/head records kept outside the log (meta row, sidecar, registry, export, report).
    """
    findings: list[Finding] = []
    seqs = _true_seqs(case_id, entries, findings)
    _check_order(entries, seqs, findings)
    _check_links(case_id, entries, seqs, findings)
    _check_anchors(entries, seqs, anchors, findings)
    intact = [(s, e) for s, e in zip(seqs, entries, strict=True) if s is not None]
    head = max(intact, key=lambda t: t[0])[1].hash if intact else genesis_hash(case_id)
    findings.sort(key=lambda f: (f.seq if f.seq is not None else 0, f.position or 0))
    return AuditReport(ok=not findings, count=len(entries), head=head, findings=findings,
                       anchors_checked=[a.source for a in anchors])
