"""The authorization a search was run under (the agency's policy fields), kept with it as an audited record."""

from __future__ import annotations

import json
from typing import Any

from engine.cases import exam_schema
from engine.cases.db import canonical_json, now_iso
from engine.cases.store import Case, resolve_user


def record_authorization(case: Case, search_id: int, fields: dict[str, str], policy_sha256: str, *,
                         user: str | None = None) -> int:
    """Keep the authorization fields of a search and the SHA-256 of the policy file it was checked against.

    Call it inside the same :meth:`Case.write` that recorded the search, so both commit together.
    """
    user = resolve_user(user)
    with case.write() as conn:
        exam_schema.ensure_tables(conn)
        cur = conn.execute("INSERT INTO authorizations (search_id, policy_sha256, fields, created_at, created_by) "
                           "VALUES (?,?,?,?,?)", (search_id, policy_sha256, canonical_json(fields), now_iso(), user))
        aid = int(cur.lastrowid or 0)
        case.log("search.authorization", f"search:{search_id}", user=user, inputs={"policy": policy_sha256},
                 details={"fields": fields}, records=[("authorizations", aid)])
    return aid


def authorization(case: Case, search_id: int) -> dict[str, Any] | None:
    """The authorization recorded with a search: its fields and the policy's SHA-256, or None."""
    if not exam_schema.present(case.conn, "authorizations"):
        return None
    r = case.conn.execute("SELECT * FROM authorizations WHERE search_id = ? ORDER BY id DESC LIMIT 1",
                          (search_id,)).fetchone()
    if r is None:
        return None
    return {"fields": json.loads(r["fields"]), "policy_sha256": r["policy_sha256"], "recorded_by": r["created_by"],
            "recorded_at": r["created_at"]}
