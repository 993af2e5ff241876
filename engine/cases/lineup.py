"""Photo line-ups in the case record: members (the sealed key), fairness, filler swaps, witness responses.

Why in the case: a line-up is where a sketch lead meets a witness, and where wrongful identifications
are made (Wells et al. 2020, "Policy and procedure recommendations for the collection and preservation of
eyewitness identification evidence", Law and Human Behavior 44(1)). Every step is one audited write
(:mod:`engine.cases.records` replays each against the rows), so the members, how they were chosen, each
swap and its reason, and the witness's choice and confidence are verified like every other record.

The members table is the *key*: which position holds the suspect. It stays in the case (a sealed
section of the report); the administration material (:mod:`engine.cases.lineup_pdf`) never carries it.
The line-up is built by the use case :mod:`engine.workstation.lineup`; this module only records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.cases import lineup_schema
from engine.cases.db import canonical_json, now_iso
from engine.cases.store import Case, resolve_user
from engine.errors import CaseError

MODES = ("simultaneous", "sequential")
SUSPECT, FILLER = "suspect", "filler"


@dataclass(frozen=True)
class Member:
    """One photo of a line-up at its position (1-based)."""

    position: int
    role: str
    gallery_id: str
    face_id: int
    subject_id: str
    photo_sha256: str
    thumbnail_sha256: str
    similarity: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Swap:
    """A filler replaced by the examiner, with the reason."""

    id: int
    position: int
    old: tuple[str, int]
    new: tuple[str, int]
    reason: str
    created_at: str
    created_by: str


@dataclass(frozen=True)
class Response:
    """The witness's response: the position chosen (None: nobody chosen) and the confidence in their words."""

    id: int
    choice: int | None
    confidence: str
    administrator: str
    material_sha256: str
    created_at: str
    created_by: str


@dataclass(frozen=True)
class Lineup:
    """A stored line-up with its latest fairness figures, swaps and responses."""

    id: int
    search_id: int
    mode: str
    seed: int
    description: dict[str, str]
    params: dict[str, Any]
    members: list[Member]
    fairness: dict[str, Any]
    warning: str
    swaps: list[Swap]
    responses: list[Response]
    created_at: str
    created_by: str

    @property
    def suspect(self) -> Member:
        return next(m for m in self.members if m.role == SUSPECT)

    def outcome(self, response: Response) -> str:
        """suspect identified / filler identified / no identification (for the sealed section only)."""
        if response.choice is None:
            return "no identification"
        return "suspect identified" if response.choice == self.suspect.position else "filler identified"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seed"] = str(self.seed)  # beyond JSON's safe integers in some readers
        return d


def case_subjects(case: Case) -> set[str]:
    """Subjects linked to this case: every subject among its searches' candidates (none may be a filler)."""
    rows = case.conn.execute("SELECT DISTINCT subject_id FROM results WHERE subject_id IS NOT NULL").fetchall()
    return {str(r[0]) for r in rows if str(r[0]).strip()}


def candidate(case: Case, search_id: int, gallery_id: str, face_id: int) -> dict[str, Any]:
    """The stored result row of a candidate of the search, or CaseError naming what to do."""
    r = case.conn.execute("SELECT * FROM results WHERE search_id = ? AND gallery_id = ? AND face_id = ?",
                          (search_id, gallery_id, face_id)).fetchone()
    if r is None:
        raise CaseError(f"Search {search_id} of case {case.case_id} has no candidate {gallery_id}:{face_id}.",
                        hint=f"See its candidates with 'sketchface case show {case.case_id} --search {search_id}'.")
    return dict(r)


def _insert_members(conn: Any, lineup_id: int, members: Sequence[Member]) -> None:
    for m in members:
        conn.execute("INSERT INTO lineup_members VALUES (?,?,?,?,?,?,?,?,?,?)",
                     (lineup_id, m.position, m.role, m.gallery_id, m.face_id, m.subject_id, m.photo_sha256,
                      m.thumbnail_sha256, float(m.similarity), canonical_json(m.metadata)))


def _insert_fairness(conn: Any, lineup_id: int, fairness: Mapping[str, Any], warning: str) -> int:
    cur = conn.execute("INSERT INTO lineup_fairness (lineup_id, figures, warning, created_at) VALUES (?,?,?,?)",
                       (lineup_id, canonical_json(dict(fairness)), warning, now_iso()))
    return int(cur.lastrowid or 0)


def _check_members(members: Sequence[Member]) -> None:
    if sorted(m.position for m in members) != list(range(1, len(members) + 1)):
        raise CaseError("Line-up positions must run 1..N without gaps; nothing was stored.")
    if [m.role for m in members].count(SUSPECT) != 1:
        raise CaseError("A line-up holds exactly one suspect; nothing was stored.")
    subjects = [m.subject_id for m in members]
    if len(set(subjects)) != len(subjects) or not all(s.strip() for s in subjects):
        raise CaseError("Every line-up member must be a different, known subject; nothing was stored.")


def store_lineup(case: Case, search_id: int, members: Sequence[Member], *, mode: str, seed: int,
                 description: Mapping[str, str], params: Mapping[str, Any], fairness: Mapping[str, Any],
                 warning: str, user: str | None = None) -> Lineup:
    """Store a built line-up (one audited entry naming the line-up, its members and its fairness figures)."""
    if mode not in MODES:
        raise CaseError(f"A line-up is {' or '.join(MODES)}, not {mode!r}.")
    _check_members(members)
    suspect = next(m for m in members if m.role == SUSPECT)
    candidate(case, search_id, suspect.gallery_id, suspect.face_id)
    user = resolve_user(user)
    with case.write() as conn:
        lineup_schema.ensure_tables(conn)
        cur = conn.execute("INSERT INTO lineups (search_id, mode, seed, description, params, created_at, created_by)"
                           " VALUES (?,?,?,?,?,?,?)", (search_id, mode, str(seed), canonical_json(dict(description)),
                                                       canonical_json(dict(params)), now_iso(), user))
        lid = int(cur.lastrowid or 0)
        _insert_members(conn, lid, members)
        fid = _insert_fairness(conn, lid, fairness, warning)
        case.log("lineup.build", f"lineup:{lid}", user=user,
                 details={"search_id": search_id, "members": len(members), "mode": mode, "warning": warning},
                 records=[("lineups", lid), ("lineup_members", lid), ("lineup_fairness", fid)])
    return get_lineup(case, lid)


def swap_member(case: Case, lineup_id: int, new: Member, *, reason: str, fairness: Mapping[str, Any], warning: str,
                user: str | None = None) -> Lineup:
    """Replace the filler at ``new.position`` (one audited entry: the swap, the members, the new fairness)."""
    if not reason.strip():
        raise CaseError("Say why the filler is swapped (the reason is recorded).")
    lineup = get_lineup(case, lineup_id)
    if lineup.responses:
        raise CaseError(f"Line-up {lineup_id} was already shown to a witness; its members can no longer change.",
                        hint="Build a new line-up instead.")
    old = next((m for m in lineup.members if m.position == new.position), None)
    if old is None or old.role != FILLER or new.role != FILLER:
        raise CaseError(f"Position {new.position} of line-up {lineup_id} is not a filler; only fillers can be swapped.")
    _check_members([new if m.position == new.position else m for m in lineup.members])
    user = resolve_user(user)
    with case.write() as conn:
        conn.execute("DELETE FROM lineup_members WHERE lineup_id = ? AND position = ?", (lineup_id, new.position))
        _insert_members(conn, lineup_id, [new])
        cur = conn.execute(
            "INSERT INTO lineup_swaps (lineup_id, position, old_gallery_id, old_face_id, new_gallery_id, new_face_id, "
            "reason, created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?)",
            (lineup_id, new.position, old.gallery_id, old.face_id, new.gallery_id, new.face_id, reason.strip(),
             now_iso(), user))
        sid = int(cur.lastrowid or 0)
        fid = _insert_fairness(conn, lineup_id, fairness, warning)
        case.log("lineup.swap", f"lineup:{lineup_id}", user=user,
                 details={"position": new.position, "reason": reason.strip(), "warning": warning},
                 records=[("lineup_members", lineup_id), ("lineup_swaps", sid), ("lineup_fairness", fid)])
    return get_lineup(case, lineup_id)


def record_response(case: Case, lineup_id: int, choice: int | None, confidence: str, *, administrator: str = "",
                    material_sha256: str = "", user: str | None = None) -> Response:
    """Record the witness's choice (a position, or None for "not present / no choice") and confidence statement.

    Args:
        confidence: the witness's own words, taken at once (required: Wells et al. 2020, recommendation 8).
        administrator: who showed the line-up (should not know the suspect's position).
        material_sha256: SHA-256 of the administration PDF shown, when at hand.
    """
    lineup = get_lineup(case, lineup_id)
    if choice is not None and not 1 <= choice <= len(lineup.members):
        raise CaseError(f"Line-up {lineup_id} has positions 1–{len(lineup.members)}; {choice} is none of them.",
                        hint="Give the position the witness chose, or 'none'.")
    if not confidence.strip():
        raise CaseError("Record the witness's confidence statement in their own words (--confidence).")
    user = resolve_user(user)
    with case.write() as conn:
        cur = conn.execute(
            "INSERT INTO lineup_responses (lineup_id, choice, confidence, administrator, material_sha256, created_at, "
            "created_by) VALUES (?,?,?,?,?,?,?)",
            (lineup_id, choice, confidence.strip(), administrator.strip(), material_sha256, now_iso(), user))
        rid = int(cur.lastrowid or 0)
        case.log("lineup.response", f"lineup:{lineup_id}", user=user,
                 details={"response_id": rid, "choice": choice, "confidence": confidence.strip()},
                 records=[("lineup_responses", rid)])
    return next(r for r in get_lineup(case, lineup_id).responses if r.id == rid)


def _members(case: Case, lineup_id: int) -> list[Member]:
    rows = case.conn.execute("SELECT * FROM lineup_members WHERE lineup_id = ? ORDER BY position",
                             (lineup_id,)).fetchall()
    return [Member(int(r["position"]), str(r["role"]), str(r["gallery_id"]), int(r["face_id"]), str(r["subject_id"]),
                   str(r["photo_sha256"]), str(r["thumbnail_sha256"]), float(r["similarity"]),
                   json.loads(r["metadata"])) for r in rows]


def get_lineup(case: Case, lineup_id: int) -> Lineup:
    """One stored line-up, or CaseError."""
    if not lineup_schema.present(case.conn):
        raise CaseError(f"Case {case.case_id} has no line-up {lineup_id}.")
    r = case.conn.execute("SELECT * FROM lineups WHERE id = ?", (lineup_id,)).fetchone()
    if r is None:
        raise CaseError(f"Case {case.case_id} has no line-up {lineup_id}.",
                        hint=f"See its line-ups with 'sketchface lineup list {case.case_id}'.")
    fair = case.conn.execute("SELECT figures, warning FROM lineup_fairness WHERE lineup_id = ? ORDER BY id DESC LIMIT 1",
                             (lineup_id,)).fetchone()
    swaps = [Swap(int(s["id"]), int(s["position"]), (str(s["old_gallery_id"]), int(s["old_face_id"])),
                  (str(s["new_gallery_id"]), int(s["new_face_id"])), str(s["reason"]), str(s["created_at"]),
                  str(s["created_by"]))
             for s in case.conn.execute("SELECT * FROM lineup_swaps WHERE lineup_id = ? ORDER BY id", (lineup_id,))]
    responses = [Response(int(x["id"]), None if x["choice"] is None else int(x["choice"]), str(x["confidence"]),
                          str(x["administrator"]), str(x["material_sha256"]), str(x["created_at"]),
                          str(x["created_by"]))
                 for x in case.conn.execute("SELECT * FROM lineup_responses WHERE lineup_id = ? ORDER BY id",
                                            (lineup_id,))]
    return Lineup(int(r["id"]), int(r["search_id"]), str(r["mode"]), int(r["seed"]), json.loads(r["description"]),
                  json.loads(r["params"]), _members(case, lineup_id), json.loads(fair[0]) if fair else {},
                  str(fair[1]) if fair else "", swaps, responses, str(r["created_at"]), str(r["created_by"]))


def list_lineups(case: Case) -> list[Lineup]:
    """Every line-up of the case, oldest first."""
    if not lineup_schema.present(case.conn):
        return []
    return [get_lineup(case, int(r[0])) for r in case.conn.execute("SELECT id FROM lineups ORDER BY id")]
