"""Cases: sketches, searches, decisions, generated images and attachments under a hash-chained audit log.

Public API (everything takes an open :class:`Case`; every change is one audited transaction)::

    case = create_case("2026-0042", "Robbery, Main St", witnesses=["W1"])   # or open_case(id|number|folder)
    v1 = add_sketch(case, png, witness="W1")
    rec = add_search(case, manifest, matches, [png], thumbnails={(gallery_id, face_id): png}, blind=True)
    record_decision(case, rec.id, face_id, "possible", note="...")
    add_generated_image(case, png, {"seed": 1, "models": {...}}, parent=v1)
    rerun_search(case, rec.id, engine_rerunner)          # identical, or what changed
    sign_off(case, "Second Examiner")
    export_report(case, "pdf")                          # pdf | html | json
    export_case(case, "case.zip"); import_case("case.zip")
    case.verify()                    # audit chain, anchors, signed head, every row and file vs the log
"""

from engine.cases.archive import ExportResult, export_case, import_case
from engine.cases.audit import AuditEntry, AuditReport, Finding
from engine.cases.images import SYNTHETIC_STAMP
from engine.cases.items import (
    Attachment,
    GeneratedImage,
    SketchVersion,
    add_attachment,
    add_generated_image,
    add_sketch,
    get_generated,
    get_sketch_version,
    list_attachments,
    list_generated,
    list_sketches,
)
from engine.cases.lifecycle import create_case, list_cases, open_case, update_case
from engine.cases.report import REPORT_FORMATS, build_report, export_report
from engine.cases.report_data import LIMITATIONS, build_report_data
from engine.cases.rerun import Rerunner, RerunReport, load_engine_rerunner, rerun_search
from engine.cases.review import (
    DECISIONS,
    Candidate,
    Decision,
    SignOff,
    candidates,
    decision_history,
    list_signoffs,
    record_decision,
    record_decisions,
    scores_hidden,
    sign_off,
)
from engine.cases.searches import (
    MANIFEST_KEYS,
    SearchRecord,
    add_search,
    get_search,
    list_searches,
    query_images,
    stored_matches,
)
from engine.cases.store import STATUSES, Case, CaseInfo, CaseReadOnly

__all__ = [
    "CaseReadOnly",
    "DECISIONS", "LIMITATIONS", "MANIFEST_KEYS", "REPORT_FORMATS", "STATUSES", "SYNTHETIC_STAMP",
    "Attachment", "AuditEntry", "AuditReport", "Candidate", "Case", "CaseInfo", "Decision", "ExportResult",
    "Finding", "GeneratedImage", "RerunReport", "Rerunner", "SearchRecord", "SignOff", "SketchVersion",
    "add_attachment", "add_generated_image", "add_search", "add_sketch", "build_report", "build_report_data",
    "candidates", "create_case", "decision_history", "export_case", "export_report", "get_generated",
    "get_search", "get_sketch_version", "import_case", "list_attachments", "list_cases", "list_generated",
    "list_searches", "list_signoffs", "list_sketches", "load_engine_rerunner", "open_case", "query_images",
    "record_decision", "record_decisions", "rerun_search", "scores_hidden", "sign_off", "stored_matches",
    "update_case",
]
