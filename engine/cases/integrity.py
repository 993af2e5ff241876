"""Whole-case verification: the audit chain, plus every record and file checked against what the log says.

The chain proves the log is unaltered; this module extends that proof to the records themselves.
Every stored file must still have the SHA-256 its row records, and every row must agree with the
audit entry that created it (a search's results digest, a sketch's hash, a decision's value), so
editing a score or a decision in the database is caught even though the log itself is intact.
"""

from __future__ import annotations

import json
from typing import Any

from engine.cases import audit
from engine.cases.db import canonical_json
from engine.cases.searches import results_digest
from engine.cases.store import Case
from engine.errors import CaseError
from engine.fsutil import sha256_bytes

_FILES = (("sketch_versions", "id", "path", "sha256", "sketch version"),
          ("generated", "id", "path", "sha256", "generated image"),
          ("attachments", "id", "path", "sha256", "attachment"),
          ("search_queries", "search_id", "path", "sha256", "query image of search"),
          ("results", "search_id", "thumbnail_path", "thumbnail_sha256", "thumbnail in search"))


def _record(msg: str) -> audit.Finding:
    return audit.Finding("record", None, None, msg)


def _check_files(case: Case) -> list[audit.Finding]:
    out = []
    for table, key, pcol, scol, label in _FILES:
        rows = case.conn.execute(f"SELECT {key}, {pcol}, {scol} FROM {table} WHERE {pcol} IS NOT NULL").fetchall()
        for r in rows:
            try:
                case.read_file(r[1], r[2])
            except CaseError:
                out.append(_record(f"File {r[1]} ({label} {r[0]}) is missing or no longer matches its SHA-256."))
    return out


_COLUMNS = ("rank", "gallery_id", "face_id", "photo_id", "photo_path", "photo_sha256", "subject_id",
            "group_size")


def _results_rows(case: Case, search_id: int) -> tuple[list[dict[str, Any]], bool]:
    """The stored rows of a search, and whether every indexed column still agrees with its row."""
    rows = case.conn.execute("SELECT * FROM results WHERE search_id = ? ORDER BY rank", (search_id,)).fetchall()
    out, consistent = [], True
    for r in rows:
        d = json.loads(r["row"])
        same = (all(d.get(c) == r[c] for c in _COLUMNS) and abs(float(r["score"]) - float(d["score"])) <= 5e-7
                and bool(r["baseline"]) == d.get("baseline") and json.loads(r["metadata"]) == d.get("metadata"))
        consistent = consistent and same
        out.append(d)
    return out, consistent


def _check_records(case: Case, entries: list[audit.AuditEntry]) -> list[audit.Finding]:
    out: list[audit.Finding] = []
    by_object: dict[str, list[audit.AuditEntry]] = {}
    for e in entries:
        by_object.setdefault(e.object, []).append(e)
    for s in case.conn.execute("SELECT id, manifest, manifest_sha256, results_sha256 FROM searches").fetchall():
        logged = next((e for e in by_object.get(f"search:{s['id']}", [])
                       if e.action in ("search.add", "search.rerun")), None)
        actual_manifest = sha256_bytes(canonical_json(json.loads(s["manifest"])).encode("utf-8"))
        rows, consistent = _results_rows(case, s["id"])
        actual_results = results_digest(rows)
        if logged is None:
            out.append(_record(f"Search {s['id']} has no audit entry: it was added outside the case store."))
        elif (not consistent or logged.outputs.get("results") != actual_results
              or s["results_sha256"] != actual_results or logged.inputs.get("manifest") != actual_manifest):
            out.append(_record(f"Search {s['id']}'s stored manifest or results differ from what the audit log "
                               f"recorded (entry #{logged.seq}): the search was altered."))
    for v in case.conn.execute("SELECT id, sketch_id, version, sha256 FROM sketch_versions").fetchall():
        made = next(iter(by_object.get(f"sketch:{v['sketch_id']}:v{v['version']}", [])), None)
        if made is None or made.outputs.get("image") != v["sha256"]:
            out.append(_record(f"Sketch {v['sketch_id']} version {v['version']} does not match its audit entry."))
    decisions = {e.details.get("decision_id"): e for e in entries if e.action == "decision.record"}
    for d in case.conn.execute("SELECT id, decision, note FROM decisions").fetchall():
        rec = decisions.get(d["id"])
        if rec is None or rec.details.get("decision") != d["decision"] or rec.details.get("note") != d["note"]:
            out.append(_record(f"Decision {d['id']} ({d['decision']}) does not match its audit entry: "
                               "it was altered or added outside the case store."))
    logged_decisions = len(decisions)
    stored = case.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    if stored < logged_decisions:
        out.append(_record(f"{logged_decisions - stored} recorded decision(s) were deleted from the database."))
    return out


def verify_case(case: Case, anchors: list[audit.Anchor]) -> audit.AuditReport:
    """Verify the chain against ``anchors``, then every record and file against the chain."""
    entries = case.audit_entries()
    report = audit.verify(case.case_id, entries, anchors)
    extra = _check_files(case) + _check_records(case, entries)
    report.findings.extend(extra)
    report.ok = not report.findings
    return report
