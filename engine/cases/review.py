"""Reviewing a search's candidates: decisions with full history, blind review, second-examiner sign-off.

Blind review guards against anchoring on the machine's score: candidates come in a shuffled order
with ranks and scores withheld until the examiner has decided (possible / excluded) on every one of
them; the moment they are revealed is itself an audit entry, and each decision records whether the
scores were hidden when it was made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from engine.cases.db import now_iso
from engine.cases.searches import get_search
from engine.cases.store import Case, resolve_user
from engine.errors import CaseError

DECISIONS = ("possible", "excluded", "not_reviewed")
FINAL_DECISIONS = ("possible", "excluded")


@dataclass(frozen=True)
class Candidate:
    """A result row as the examiner sees it, with its current decision.

    ``position`` is the display order (the rank, or the shuffled order in blind review);
    ``rank`` and ``score`` are None while a blind search's scores are hidden.
    """

    search_id: int
    position: int
    rank: int | None
    score: float | None
    gallery_id: str
    face_id: int
    photo_id: int
    photo_path: str
    photo_sha256: str
    subject_id: str | None
    metadata: dict[str, Any]
    baseline: bool
    group_size: int
    thumbnail_path: str | None
    thumbnail_sha256: str | None
    decision: str
    note: str
    decided_by: str | None
    decided_at: str | None
    hidden: bool
    gallery_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """One recorded decision (decisions are never overwritten; the latest one counts)."""

    id: int
    search_id: int
    gallery_id: str
    face_id: int
    decision: str
    note: str
    examiner: str
    decided_at: str
    scores_hidden: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SignOff:
    """A second examiner's sign-off and the audit head it covers."""

    id: int
    examiner: str
    role: str
    statement: str
    search_id: int | None
    audit_count: int
    audit_head: str
    signed_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scores_hidden(case: Case, search_id: int) -> bool:
    """True while a blind search still withholds its ranks and scores."""
    s = get_search(case, search_id)
    return s.blind and s.revealed_at is None


def _latest(case: Case, search_id: int) -> dict[tuple[str, int], Any]:
    rows = case.conn.execute(
        "SELECT d.* FROM decisions d JOIN (SELECT MAX(id) AS id FROM decisions WHERE search_id = ? "
        "GROUP BY gallery_id, face_id) last ON last.id = d.id", (search_id,)).fetchall()
    return {(r["gallery_id"], r["face_id"]): r for r in rows}


def candidates(case: Case, search_id: int) -> list[Candidate]:
    """The search's candidates in display order, with ranks and scores withheld in unfinished blind review."""
    hidden = scores_hidden(case, search_id)
    order = "blind_position" if get_search(case, search_id).blind else "rank"
    rows = case.conn.execute(f"SELECT * FROM results WHERE search_id = ? ORDER BY {order}", (search_id,)).fetchall()
    latest = _latest(case, search_id)
    out = []
    for r in rows:
        d = latest.get((r["gallery_id"], r["face_id"]))
        out.append(Candidate(
            search_id, r[order], None if hidden else r["rank"], None if hidden else float(r["score"]),
            r["gallery_id"], r["face_id"], r["photo_id"], r["photo_path"], r["photo_sha256"], r["subject_id"],
            json.loads(r["metadata"]), bool(r["baseline"]), r["group_size"], r["thumbnail_path"],
            r["thumbnail_sha256"], d["decision"] if d else "not_reviewed", d["note"] if d else "",
            d["examiner"] if d else None, d["decided_at"] if d else None, hidden,
            str(json.loads(r["row"]).get("gallery_name") or "")))
    return out


def _resolve_candidate(case: Case, search_id: int, face_id: int, gallery_id: str | None) -> tuple[str, int]:
    rows = case.conn.execute("SELECT gallery_id FROM results WHERE search_id = ? AND face_id = ?"
                             + (" AND gallery_id = ?" if gallery_id else ""),
                             (search_id, face_id, *([gallery_id] if gallery_id else []))).fetchall()
    if not rows:
        raise CaseError(f"Face {face_id} is not a candidate of search {search_id}.")
    if len(rows) > 1:
        raise CaseError(f"Face {face_id} appears in several galleries of search {search_id}.",
                        hint="Say which gallery (GALLERY:FACE).")
    return str(rows[0][0]), face_id


def record_decisions(case: Case, search_id: int, items: Iterable[Mapping[str, Any]], *,
                     user: str | None = None) -> list[Candidate]:
    """Record several decisions in one transaction, one audit entry each.

    Args:
        items: mappings with ``face_id``, ``decision`` (possible | excluded | not_reviewed) and
            optionally ``note`` and ``gallery_id`` (needed only when a face id is in two galleries).
    """
    user = resolve_user(user)
    search = get_search(case, search_id)
    with case.write() as conn:
        hidden = search.blind and search.revealed_at is None
        for item in items:
            decision = str(item.get("decision", ""))
            if decision not in DECISIONS:
                raise CaseError(f"Unknown decision {decision!r}; use one of {', '.join(DECISIONS)}.")
            gallery_id, face_id = _resolve_candidate(case, search_id, int(item["face_id"]), item.get("gallery_id"))
            note = str(item.get("note", ""))
            prev = _latest(case, search_id).get((gallery_id, face_id))
            cur = conn.execute("INSERT INTO decisions (search_id, gallery_id, face_id, decision, note, examiner, "
                               "decided_at, scores_hidden) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (search_id, gallery_id, face_id, decision, note, user, now_iso(), int(hidden)))
            case.log("decision.record", f"search:{search_id}:face:{gallery_id}/{face_id}", user=user,
                     details={"decision_id": cur.lastrowid, "decision": decision, "note": note,
                              "previous": prev["decision"] if prev else "not_reviewed", "scores_hidden": hidden},
                     records=[("decisions", cur.lastrowid)])
        if hidden and _all_decided(case, search_id):
            conn.execute("UPDATE searches SET revealed_at = ? WHERE id = ?", (now_iso(), search_id))
            case.log("search.reveal_scores", f"search:{search_id}", user=user,
                     details={"reason": "every candidate has a decision"}, records=[("searches", search_id)])
    return candidates(case, search_id)


def record_decision(case: Case, search_id: int, face_id: int, decision: str, *, gallery_id: str | None = None,
                    note: str = "", user: str | None = None) -> Candidate:
    """Record the examiner's decision on one candidate (history is kept; the latest counts)."""
    rows = record_decisions(case, search_id, [{"face_id": face_id, "decision": decision, "note": note,
                                               "gallery_id": gallery_id}], user=user)
    return next(c for c in rows if c.face_id == face_id and (gallery_id is None or c.gallery_id == gallery_id))


def _all_decided(case: Case, search_id: int) -> bool:
    total = case.conn.execute("SELECT COUNT(*) FROM results WHERE search_id = ?", (search_id,)).fetchone()[0]
    decided = sum(1 for d in _latest(case, search_id).values() if d["decision"] in FINAL_DECISIONS)
    return bool(total) and decided == total


def decision_history(case: Case, search_id: int, face_id: int | None = None) -> list[Decision]:
    """Every decision recorded on a search (or on one face of it), oldest first."""
    sql = "SELECT * FROM decisions WHERE search_id = ?" + (" AND face_id = ?" if face_id is not None else "")
    args = (search_id, face_id) if face_id is not None else (search_id,)
    rows = case.conn.execute(sql + " ORDER BY id", args).fetchall()
    return [Decision(r["id"], r["search_id"], r["gallery_id"], r["face_id"], r["decision"], r["note"],
                     r["examiner"], r["decided_at"], bool(r["scores_hidden"])) for r in rows]


def sign_off(case: Case, examiner: str, *, role: str = "second examiner", statement: str = "",
             search_id: int | None = None) -> SignOff:
    """Record a second examiner's sign-off over the case (or one search) as it stands now.

    Refused when the audit chain does not verify (nobody should sign a tampered record) and when the
    signer is the case's own examiner (a second examiner must be a second person).
    """
    examiner = examiner.strip()
    if not examiner:
        raise CaseError("A sign-off needs the signing examiner's name.")
    if examiner.casefold() == case.info.examiner.casefold():
        raise CaseError(f"{examiner} is the case examiner; a second-examiner sign-off must come from someone else.")
    if search_id is not None:
        get_search(case, search_id)
    report = case.verify()
    if not report.ok:
        raise CaseError("The case's audit chain does not verify; it cannot be signed off.",
                        hint="Run 'sketchface case verify' to see where it was altered.")
    with case.write() as conn:
        count = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        cur = conn.execute("INSERT INTO signoffs (examiner, role, statement, search_id, audit_count, audit_head, "
                           "signed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (examiner, role, statement, search_id, count, report.head, now_iso()))
        sid = int(cur.lastrowid or 0)
        case.log("signoff.record", f"search:{search_id}" if search_id else f"case:{case.case_id}", user=examiner,
                 inputs={"audit_head": report.head}, details={"role": role, "statement": statement,
                                                               "audit_count": count, "signoff_id": sid},
                 records=[("signoffs", sid)])
    return next(s for s in list_signoffs(case) if s.id == sid)


def list_signoffs(case: Case) -> list[SignOff]:
    """Every sign-off recorded on the case, oldest first."""
    rows = case.conn.execute("SELECT * FROM signoffs ORDER BY id").fetchall()
    return [SignOff(r["id"], r["examiner"], r["role"], r["statement"], r["search_id"], r["audit_count"],
                    r["audit_head"], r["signed_at"]) for r in rows]
