"""Reviewing a search's candidates: decisions with full history, blind review, second-examiner sign-off.

Blind review guards against anchoring on the machine's score: candidates come in a shuffled order
with ranks and scores withheld until the examiner has decided (possible / excluded) on every one of
them; the moment they are revealed is itself an audit entry, and each decision records whether the
scores were hidden when it was made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from engine import examiners
from engine.cases.audit import AUTHOR
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
        where = f" of gallery {gallery_id}" if gallery_id else ""
        raise CaseError(f"Face {face_id}{where} is not a candidate of search {search_id}.")
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


def decision_authors(case: Case, search_id: int | None = None) -> tuple[set[str], set[str]]:
    """The key fingerprints that made the case's (or one search's) decisions, and the names on decisions
    that carry no examiner key (entries from before examiner profiles)."""
    keys: set[str] = set()
    names: set[str] = set()
    prefix = f"search:{search_id}:" if search_id is not None else "search:"
    for e in case.audit_entries():
        if e.action != "decision.record" or not e.object.startswith(prefix):
            continue
        author = e.details.get(AUTHOR)
        if isinstance(author, dict) and author.get("fingerprint"):
            keys.add(str(author["fingerprint"]))
        else:
            names.add(e.user.casefold())
    return keys, names


def _refuse_own_decisions(case: Case, reviewer: Mapping[str, Any], search_id: int | None) -> None:
    """Peer review needs two keys: the reviewer's key must have made none of the decisions reviewed."""
    keys, names = decision_authors(case, search_id)
    if str(reviewer.get("fingerprint")) in keys or str(reviewer.get("name", "")).casefold() in names:
        raise CaseError(f"The key of {reviewer.get('name')} ({reviewer.get('identifier')}, key "
                        f"{str(reviewer.get('fingerprint'))[:16]}) made decisions in "
                        f"{'search ' + str(search_id) if search_id is not None else 'this case'}; a second-examiner "
                        "sign-off must be signed by another examiner's key, whatever name it is given.",
                        hint="The reviewer signs off under their own profile ('sketchface examiner use'), or on "
                             "their own workstation with 'sketchface case review-file'.")


def _searches_covered(case: Case, search_id: int | None) -> list[int]:
    if search_id is not None:
        return [search_id]
    return [int(r[0]) for r in case.conn.execute("SELECT id FROM searches ORDER BY id").fetchall()]


def decisions_in_scope(case: Case, search_id: int | None) -> tuple[list[dict[str, Any]], int]:
    """The current decisions a sign-off covers and how many candidates are still undecided."""
    decided: list[dict[str, Any]] = []
    undecided = 0
    for sid in _searches_covered(case, search_id):
        for c in candidates(case, sid):
            if c.decision in FINAL_DECISIONS:
                decided.append({"search_id": sid, "gallery_id": c.gallery_id, "face_id": c.face_id,
                                "decision": c.decision, "decided_by": c.decided_by})
            else:
                undecided += 1
    return decided, undecided


def _refuse_unscoped(decided: list[dict[str, Any]], undecided: int, scope: str) -> None:
    if undecided and not scope.strip():
        raise CaseError(f"{undecided} candidate(s) have no decision yet; a sign-off must state what was reviewed.",
                        hint=f"Decide them first, or give an explicit scope, e.g. --scope \"reviewed the "
                             f"{len(decided)} decided candidates only\" (the report prints it).")


def blind_candidates(case: Case, search_id: int) -> list[dict[str, Any]]:
    """A search's candidates as a blind reviewer sees them: no decision, note, examiner, rank or score."""
    return [{"search_id": c.search_id, "position": c.position, "gallery_id": c.gallery_id, "face_id": c.face_id,
             "photo_path": c.photo_path, "photo_sha256": c.photo_sha256, "thumbnail_path": c.thumbnail_path,
             "gallery_name": c.gallery_name} for c in candidates(case, search_id)]


def candidates_for_blind_review(case: Case, search_id: int) -> list[Candidate]:
    """The candidate list as the acting reviewer sees it in blind review: the first examiner's decisions,
    notes and names withheld until the reviewer's own blind decisions are recorded.

    Refused for a profile whose key made decisions in the search (it cannot review itself blind), and
    once the reviewer's blind decisions on it are recorded (from then on the ordinary list is theirs).
    """
    reviewer = examiners.require_current()
    _refuse_own_decisions(case, reviewer.author(), search_id)
    if blind_review_recorded(case, search_id):
        raise CaseError(f"The blind decisions of {reviewer.name} ({reviewer.identifier}) on search {search_id} are "
                        "already recorded; the candidate list now shows the first examiner's decisions.",
                        hint="The sign-off lists where your blind decisions differ.")
    return [replace(c, decision="not_reviewed", note="", decided_by=None, decided_at=None)
            for c in candidates(case, search_id)]


def blind_review_recorded(case: Case, search_id: int) -> bool:
    """True once the acting profile's key recorded blind decisions on this search."""
    profile = examiners.current()
    return profile is not None and bool(_blind_review_of(case, profile.fingerprint, [search_id]))


def reviewer_disagreements(case: Case, search_id: int | None = None) -> tuple[bool, list[dict[str, Any]]]:
    """(blind review recorded, disagreements) for the acting profile over the case or one search: what a
    sign-off by that profile would list, shown before signing."""
    reviewer = examiners.require_current()
    decided, _ = decisions_in_scope(case, search_id)
    blind = _blind_review_of(case, reviewer.fingerprint, _searches_covered(case, search_id))
    return bool(blind), disagreements(decided, blind)


def _blind_items(case: Case, search_id: int, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        decision = str(item.get("decision", ""))
        if decision not in FINAL_DECISIONS:
            raise CaseError(f"A blind review decision is one of {', '.join(FINAL_DECISIONS)}, not {decision!r}.")
        gallery_id, face_id = _resolve_candidate(case, search_id, int(item["face_id"]), item.get("gallery_id"))
        out.append({"search_id": search_id, "gallery_id": gallery_id, "face_id": face_id, "decision": decision})
    return out


def record_blind_review(case: Case, search_id: int, items: Iterable[Mapping[str, Any]], *,
                        user: str | None = None) -> list[dict[str, Any]]:
    """The reviewer's own decisions, made before seeing the first examiner's, under the reviewer's profile.

    Kept as a signed audit entry (not as case decisions): the sign-off then lists where the two differ.
    Recorded once per search and key: after it, :func:`candidates_for_blind_review` shows that key the
    first examiner's decisions, so a second batch would not be blind (and could hide a disagreement).
    """
    reviewer = examiners.require_current()
    _refuse_own_decisions(case, reviewer.author(), search_id)
    if _blind_review_of(case, reviewer.fingerprint, [search_id]):
        raise CaseError(f"Blind decisions of {reviewer.name} ({reviewer.identifier}) on search {search_id} are already "
                        "recorded; since then the first examiner's decisions are shown to this key, so further "
                        "decisions would not be blind.",
                        hint="Record your view in the sign-off's statement instead.")
    rows = _blind_items(case, search_id, items)
    with case.write():
        case.log("review.blind", f"search:{search_id}", user=resolve_user(user),
                 details={"search_id": search_id, "decisions": rows})
    return rows


def _blind_review_of(case: Case, fingerprint: str, search_ids: list[int]) -> list[dict[str, Any]]:
    """The latest blind decisions the key ``fingerprint`` recorded on these searches."""
    latest: dict[tuple[int, str, int], dict[str, Any]] = {}
    for e in case.audit_entries():
        author = e.details.get(AUTHOR)
        if e.action != "review.blind" or not isinstance(author, dict) or author.get("fingerprint") != fingerprint:
            continue
        for r in e.details.get("decisions", []) or []:
            if isinstance(r, dict) and r.get("search_id") in search_ids:
                latest[(int(r["search_id"]), str(r["gallery_id"]), int(r["face_id"]))] = r
    return list(latest.values())


def disagreements(decided: list[dict[str, Any]], blind: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the blind reviewer decided otherwise than the first examiner (a blind decision on an
    undecided candidate counts as a disagreement too)."""
    first = {(d["search_id"], d["gallery_id"], d["face_id"]): d for d in decided}
    out = []
    for b in blind:
        d = first.get((b["search_id"], b["gallery_id"], b["face_id"]))
        if d is None or d["decision"] != b["decision"]:
            out.append({"search_id": b["search_id"], "gallery_id": b["gallery_id"], "face_id": b["face_id"],
                        "first_examiner": d["decision"] if d else "not_reviewed",
                        "first_examiner_name": d.get("decided_by") if d else None, "reviewer": b["decision"]})
    return out


def sign_off(case: Case, examiner: str | None = None, *, role: str = "second examiner", statement: str = "",
             search_id: int | None = None, scope: str = "") -> SignOff:
    """Record the acting examiner profile's sign-off over the case (or one search) as it stands now.

    Refused when the case does not verify (nobody should sign a tampered record), when the acting
    profile's key made any of the decisions covered (peer review needs two keys; the name typed is
    irrelevant), and when candidates are undecided without an explicit ``scope``. The entry is
    signed with the reviewer's key and lists where the reviewer's blind decisions differ.
    """
    reviewer = examiners.require_current()
    author = reviewer.author()
    if search_id is not None:
        get_search(case, search_id)
    _refuse_own_decisions(case, author, search_id)
    if examiner and examiner.strip() and examiner.strip().casefold() != reviewer.name.casefold():
        raise CaseError(f"This sign-off would be recorded as {reviewer.name} ({reviewer.identifier}), the acting "
                        f"examiner profile, not as {examiner.strip()}.",
                        hint=f"{examiner.strip()} signs off under their own profile: 'sketchface examiner use'.")
    if reviewer.name.casefold() == case.info.examiner.casefold():
        raise CaseError(f"{reviewer.name} is the case examiner; a second-examiner sign-off must come from someone "
                        "else.")
    decided, undecided = decisions_in_scope(case, search_id)
    _refuse_unscoped(decided, undecided, scope)
    report = case.verify()
    if not report.ok:
        raise CaseError("The case's audit chain does not verify; it cannot be signed off.",
                        hint="Run 'sketchface case verify' to see where it was altered.")
    blind = _blind_review_of(case, reviewer.fingerprint, _searches_covered(case, search_id))
    differ = disagreements(decided, blind)
    with case.write() as conn:
        count = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        cur = conn.execute("INSERT INTO signoffs (examiner, role, statement, search_id, audit_count, audit_head, "
                           "signed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (reviewer.name, role, statement, search_id, count, report.head, now_iso()))
        sid = int(cur.lastrowid or 0)
        case.log("signoff.record", f"search:{search_id}" if search_id else f"case:{case.case_id}",
                 user=reviewer.name, inputs={"audit_head": report.head},
                 details={"role": role, "statement": statement, "audit_count": count, "signoff_id": sid,
                          "reviewer": author, "scope": scope.strip(), "undecided": undecided,
                          "decisions_reviewed": decided, "blind": bool(blind), "disagreements": differ},
                 records=[("signoffs", sid)])
    return next(s for s in list_signoffs(case) if s.id == sid)


def list_signoffs(case: Case) -> list[SignOff]:
    """Every sign-off recorded on the case, oldest first."""
    rows = case.conn.execute("SELECT * FROM signoffs ORDER BY id").fetchall()
    return [SignOff(r["id"], r["examiner"], r["role"], r["statement"], r["search_id"], r["audit_count"],
                    r["audit_head"], r["signed_at"]) for r in rows]
