"""Whole-case verification: the audit chain, its signed head, and every record and file against the log.

The chain proves the log is unaltered from its head; the workstation signature proves the head (see
:mod:`engine.cases.anchor`); this module extends the proof to everything the case states. Each
audited change recorded digests of the rows it wrote (:mod:`engine.cases.records`), so replaying the
log gives what every table must hold: a row no entry wrote and an entry whose row is gone or
different are both findings, located by entry number. The database schema must be exactly the one
SketchFace creates (no trigger, view or extra table), and every stored file must still have the
SHA-256 its row records.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from engine.cases import (
    anchor,
    audit,
    authorship,
    db,
    exam_checks,
    exam_schema,
    ledger,
    lineup_schema,
    records,
    watch_schema,
    witness_schema,
)
from engine.errors import CaseError, EngineError
from engine.fsutil import sha256_file

if TYPE_CHECKING:  # the store calls in here before every write; only the type is needed
    from engine.cases.store import Case

_FILES = (("sketch_versions", "id", "path", "sha256", "sketch version"),
          ("generated", "id", "path", "sha256", "generated image"),
          ("attachments", "id", "path", "sha256", "attachment"),
          ("search_queries", "search_id", "path", "sha256", "query image of search"),
          ("results", "search_id", "thumbnail_path", "thumbnail_sha256", "thumbnail in search"))
META_KEYS = frozenset({"schema_version", "case_id", audit.ANCHOR_META_KEY, anchor.SIGNATURE_META_KEY})


def _finding(kind: str, msg: str, seq: int | None = None) -> audit.Finding:
    return audit.Finding(kind, seq, None, msg)


def referenced_files(conn: sqlite3.Connection) -> dict[str, str]:
    """Every case-relative file path a record refers to, with the SHA-256 the record gives it."""
    out: dict[str, str] = {}
    for table, _key, pcol, scol, _label in _FILES:
        for r in conn.execute(f"SELECT {pcol}, {scol} FROM {table} WHERE {pcol} IS NOT NULL").fetchall():
            out[str(r[0])] = str(r[1])
    return out


def _check_files(case: Case) -> list[audit.Finding]:
    out = []
    for table, key, pcol, scol, label in _FILES:
        rows = case.conn.execute(f"SELECT {key}, {pcol}, {scol} FROM {table} WHERE {pcol} IS NOT NULL").fetchall()
        for r in rows:
            try:
                case.read_file(str(r[1]), str(r[2]))
            except CaseError:
                out.append(_finding("record", f"File {r[1]} ({label} {r[0]}) is missing or no longer matches "
                                              "its SHA-256."))
    return out


def _check_reports(case: Case, entries: list[audit.AuditEntry]) -> list[audit.Finding]:
    """A report kept in the case's reports/ folder must be the one its report.export entry names."""
    named: dict[str, list[tuple[str, int]]] = {}
    for e in entries:
        if e.action == "report.export" and isinstance(e.details.get("file"), str):
            named.setdefault(str(e.details["file"]), []).append((str(e.outputs.get("report")), e.seq))
    out = []
    for name, digests in sorted(named.items()):
        path = case.folder / "reports" / name
        if path.is_file() and sha256_file(path) not in {d for d, _ in digests}:
            out.append(_finding("record", f"Report reports/{name} is not the report audit entry "
                                          f"#{digests[-1][1]} recorded (SHA-256 differs): it was replaced.",
                                digests[-1][1]))
    return out


def schema_differences(conn: sqlite3.Connection) -> list[str]:
    """How a database's schema differs from a fresh case's (extra triggers, views, tables; changed tables)."""
    fresh = sqlite3.connect(":memory:")
    try:
        db.init_schema(fresh)
        want = {(r[0], r[1]): r[2] for r in fresh.execute("SELECT type, name, sql FROM sqlite_master")}
        owner = {(str(r[0]), str(r[1])): str(r[2]) for r in fresh.execute("SELECT type, name, tbl_name FROM sqlite_master")}
    finally:
        fresh.close()
    got = {(str(r[0]), str(r[1])): r[2] for r in conn.execute("SELECT type, name, sql FROM sqlite_master")}
    lazy = {*exam_schema.TABLES, *watch_schema.TABLES, *lineup_schema.TABLES, *witness_schema.TABLES}  # older case: made on first use
    missing_lazy = {t for t in lazy if ("table", t) not in got}
    out = [f"a {kind} '{name}' that SketchFace never creates" for (kind, name) in sorted(got.keys() - want.keys())]
    out += [f"no {kind} '{name}'" for (kind, name) in sorted(want.keys() - got.keys())
            if owner[(kind, name)] not in missing_lazy]  # a lazy table's own indexes are missing with it
    out += [f"a changed definition of {kind} '{name}'" for (kind, name) in sorted(got.keys() & want.keys())
            if got[(kind, name)] != want[(kind, name)]]
    return out


def _check_schema(case: Case) -> list[audit.Finding]:
    return [_finding("schema", f"The case database holds {d}: it was altered outside SketchFace.")
            for d in schema_differences(case.conn)]


def _check_meta(case: Case, entries: list[audit.AuditEntry], *, chain_ok: bool) -> list[audit.Finding]:
    out = []
    keys = {str(r[0]) for r in case.conn.execute("SELECT key FROM meta").fetchall()}
    out += [_finding("schema", f"The case meta table holds an unknown key {k!r}.") for k in sorted(keys - META_KEYS)]
    if db.get_meta(case.conn, "schema_version") != str(db.SCHEMA_VERSION):
        out.append(_finding("schema", "The case's schema version was changed."))
    if entries and audit.ANCHOR_META_KEY not in keys:
        out.append(_finding("anchor", "The case meta record of the audit head is missing: it was deleted."))
    out += _check_meta_forms(case)
    positions = [e.pos for e in entries]
    if chain_ok and positions != list(range(1, len(entries) + 1)):  # else the chain findings say more
        out.append(_finding("reordered", "The audit log's storage positions were renumbered: they no longer run "
                                         f"1–{len(entries)}."))
    return out


def _check_meta_forms(case: Case) -> list[audit.Finding]:
    """The head record and its signature must be stored exactly as SketchFace writes them."""
    out = []
    raw = db.get_meta(case.conn, audit.ANCHOR_META_KEY)
    if raw is not None:
        try:
            count, head = audit.read_anchor(case.conn) or (0, "")
            same = raw == db.canonical_json({"count": count, "head": head})
        except (ValueError, KeyError, TypeError):
            same = False
        if not same:
            out.append(_finding("anchor", "The case meta record of the audit head was altered (it is not in the "
                                          "form SketchFace writes)."))
    raw = db.get_meta(case.conn, anchor.SIGNATURE_META_KEY)
    if raw is not None:
        try:
            sig = anchor.read_signature(case.conn)
            same = sig is not None and raw == db.canonical_json(asdict(sig))
        except ValueError:
            same = True  # reported as unreadable by the signature check
        if not same:
            out.append(_finding("signature", "The stored head signature was altered (it is not in the form "
                                             "SketchFace writes)."))
    return out


def _expected_records(entries: list[audit.AuditEntry]) -> dict[str, tuple[str, int]]:
    """Replay the log: for each record, the digest its latest entry wrote and that entry's number."""
    expected: dict[str, tuple[str, int]] = {}
    for e in sorted(entries, key=lambda x: x.seq):
        recs = e.details.get("records")
        if isinstance(recs, dict):
            expected.update({str(k): (str(v), e.seq) for k, v in recs.items()})
    return expected


def _check_records(case: Case, entries: list[audit.AuditEntry]) -> list[audit.Finding]:
    expected = _expected_records(entries)
    actual = records.all_records(case.conn)
    out = []
    for key in sorted(actual.keys() - expected.keys()):
        out.append(_finding("record", f"{records.label(key)} has no audit entry: it was added outside the case "
                                      "store."))
    for key in sorted(expected.keys() - actual.keys()):
        seq = expected[key][1]
        out.append(_finding("record", f"{records.label(key)}, written by audit entry #{seq}, is missing from the "
                                      "database: it was deleted.", seq))
    for key in sorted(expected.keys() & actual.keys()):
        digest, seq = expected[key]
        if actual[key] != digest:
            fields = _changed_details(case, entries) if key.startswith("case_info:") else ""
            out.append(_finding("record", f"{records.label(key)}{fields} does not match its audit entry #{seq}: it "
                                          "was altered outside the case store.", seq))
    return out


_DETAIL_FIELDS = ("case_number", "title", "examiner", "witnesses", "incident_date", "status", "notes")


def _changed_details(case: Case, entries: list[audit.AuditEntry]) -> str:
    """Which case-details fields differ from the values replayed from case.create and case.update entries."""
    replayed: dict[str, Any] = {}
    for e in sorted(entries, key=lambda x: x.seq):
        if e.action == "case.create":
            replayed.update({k: e.details.get(k) for k in _DETAIL_FIELDS})
        elif e.action == "case.update" and isinstance(e.details.get("after"), dict):
            replayed.update(e.details["after"])
    row = case.conn.execute("SELECT * FROM case_info WHERE id = 1").fetchone()
    if row is None:
        return ""
    changed = []
    for k in _DETAIL_FIELDS:
        stored: Any = row[k]
        if k == "witnesses":
            with contextlib.suppress(TypeError, ValueError):
                stored = json.loads(stored)
        if k in replayed and stored != replayed[k]:
            changed.append(k)
    return f" ({', '.join(changed)})" if changed else ""


def _head_seq(entries: list[audit.AuditEntry], head: str) -> int:
    return max((e.seq for e in entries if e.hash == head), default=0)


def _check_signature(case: Case, entries: list[audit.AuditEntry], report: audit.AuditReport,
                     accept_other_key: bool, accepted_head: tuple[int, str] | None = None) -> list[audit.Finding]:
    """The signed head must be this log's head, signed by this workstation (or, on import, any named key).

    Args:
        accepted_head: a (count, head) this workstation recorded as verified (an import it accepted):
            a signature by another key over exactly that head is no finding.
    """
    count = _head_seq(entries, report.head)
    try:
        sig = anchor.read_signature(case.conn)
    except ValueError:
        return [_finding("signature", "The workstation signature of the audit head is unreadable.")]
    if sig is None:
        if not entries:
            return []
        return [_finding("signature", "The audit head carries no workstation signature: nothing shows that a "
                                      "SketchFace workstation wrote this log.", count or None)]
    try:
        own = anchor.public_key_hex()
    except (OSError, EngineError) as exc:
        own = ""
        own_problem = str(exc)
    else:
        own_problem = ""
    valid = sig.valid()
    report.signature = {**sig.to_dict(), "valid": valid, "this_workstation": sig.public_key == own,
                        "workstation_fingerprint": anchor.key_fingerprint(own) if own else None}
    out = []
    if not valid:
        out.append(_finding("signature", "The workstation signature of the audit head does not verify: the "
                                         "signature or the head it names was changed.", sig.count or None))
    elif sig.case_id != case.case_id:
        out.append(_finding("signature", f"The workstation signature belongs to case {sig.case_id}, not this one."))
    elif (sig.count, sig.head) != (count, report.head):
        out.append(_finding("signature", f"The workstation signed the log ending at entry #{sig.count}; the log "
                                         f"now ends at #{count}: entries were added, removed or rewritten without "
                                         "the workstation key.", min(sig.count, count) + 1))
    accepted = accepted_head is not None and (sig.count, sig.head) == accepted_head
    if sig.public_key != own and not accept_other_key and not accepted:
        why = f" (this workstation's key is unavailable: {own_problem})" if own_problem else (
            f"; this workstation's key is {anchor.key_fingerprint(own)}")
        out.append(_finding("signature", f"The audit head is signed by key {sig.fingerprint}, not by this "
                                         f"workstation{why}."))
    return out


def _check_anchor_records(anchors: list[audit.Anchor]) -> list[audit.Finding]:
    """Anchors kept outside the case whose workstation signature failed: someone rewrote them."""
    return [_finding("anchor", a.problem) for a in anchors if a.problem]


def verify_case(case: Case, anchors: list[audit.Anchor], *, accept_other_key: bool = False, files: bool = True,
                trusted: tuple[int, str] | None = None) -> audit.AuditReport:
    """Verify the chain against ``anchors``, its signature, then every record and file against the chain.

    Args:
        anchors: count/head records kept outside the log (see :meth:`Case.anchors`).
        accept_other_key: a head signed by another workstation's key is no finding (an archive being
            imported); the key is still reported in ``report.signature``.
        files: also re-hash every stored file (False before a write: no write can make a changed file
            read as unchanged, and hashing every thumbnail on each click is what made checks skippable).
        trusted: a verified (count, head) from this workstation's signed record: entries up to it are
            not re-hashed, and a head signed by another key is accepted only if it is exactly this one.
    """
    entries = case.audit_entries()
    report = audit.verify_from(case.case_id, entries, anchors, trusted)
    extra = _check_schema(case) + _check_meta(case, entries, chain_ok=not report.findings)
    extra += _check_records(case, entries)
    extra += [_finding("record", m) for m in exam_checks.conclusion_findings(case.conn)]
    if files:
        extra += _check_files(case) + _check_reports(case, entries)
    extra += _check_signature(case, entries, report, accept_other_key, trusted)
    extra += _check_anchor_records(anchors)
    edited = {f.seq for f in report.findings if f.kind in ("edited", "reordered", "replaced")}  # already said of those
    signed = authorship.check(case.case_id, entries, skip=edited)  # every entry's examiner signature, labelled
    report.examiners = signed.to_dict()
    extra += signed.findings
    report.findings.extend(extra)
    report.ok = not report.findings
    return report


def is_fresh(case: Case) -> bool:
    """A database that holds nothing yet (a case being created): there is no record to launder."""
    conn = case.conn
    return (conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
            and conn.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0
            and not records.all_records(conn))


def check_before_write(case: Case) -> audit.AuditReport | None:
    """Everything a write could hide, checked before it extends the log; None when all holds.

    The same checks as ``case verify`` except re-hashing stored files, against this workstation's
    signed verified-head record (:mod:`engine.cases.ledger`): the chain up to the head being
    extended, its signature by this workstation (or exactly the head an import accepted), every
    record against the log, the schema, and every anchor, authenticated ones included.
    """
    if is_fresh(case):
        return None
    verified = ledger.lookup(case.case_id)
    trusted = (verified.count, verified.head) if verified is not None and verified.authentic else None
    report = verify_case(case, case.anchors(), files=False, trusted=trusted)
    return None if report.ok else report


def describe_signature(sig: dict[str, Any] | None) -> str:
    """One line naming who signed the head, for terminals and reports."""
    if not sig:
        return "not signed"
    who = "this workstation" if sig.get("this_workstation") else "ANOTHER workstation"
    state = "valid" if sig.get("valid") else "INVALID"
    return f"{state} signature by {who}, key {sig.get('fingerprint')}"
