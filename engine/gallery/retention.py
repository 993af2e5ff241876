"""Gallery retention: the administrator's rules that take photos out of a gallery, and the log of what went and why.

Why: an agency's model use policy (the Georgetown "Perpetual Line-Up" report's model policy among them)
requires purging records on a schedule: people released or never charged, photos whose retention date
passed, photos older than an age. The rules are the administrator's, in ``retention_policy.toml`` beside the
search policy (:func:`engine.policy.retention_policy_path`); nobody switches them off in the window.

Example ``retention_policy.toml``::

    [[rule]]
    name = "retention date passed"
    field = "retain_until"      # a photo metadata field holding an ISO date
    passed = true

    [[rule]]
    name = "released"
    field = "status"
    equals = "released"

    [[rule]]
    name = "older than seven years"
    older_than_days = 2557

A removed photo leaves the store with its faces, embeddings and thumbnails, and its faces leave the index;
cases that recorded a removed face keep their own copy of its thumbnail. Each removal is logged with the
rule that removed it: a local gallery appends to ``retention_log.jsonl`` in its folder (fsynced), a server
gallery to ``retention_log``, an append-only table of the access log's family, in the same transaction as
the deletion.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine import policy
from engine.errors import ConfigError, GalleryError
from engine.gallery.filters import parse_filters
from engine.gallery.gallery import Gallery
from engine.gallery.pg.gallery import PgGallery
from engine.gallery.pg.schema import FILTER_COLUMNS, SCHEMA
from engine.timestamps import format_utc, utc_now_iso

LOG_FILE = "retention_log.jsonl"
_FIELD_OK = set("abcdefghijklmnopqrstuvwxyz0123456789_")

LOG_TABLE = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.retention_log (
  id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), who name NOT NULL DEFAULT session_user,
  gallery_id text NOT NULL, photo_id bigint NOT NULL, photo_sha256 text NOT NULL, path text, faces bigint[] NOT NULL,
  rule text NOT NULL, reason text NOT NULL);
DROP TRIGGER IF EXISTS retention_log_append_only ON {SCHEMA}.retention_log;
CREATE TRIGGER retention_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {SCHEMA}.retention_log
  FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change();
ALTER TABLE {SCHEMA}.retention_log ENABLE ROW LEVEL SECURITY;
"""


@dataclass(frozen=True)
class Rule:
    """One retention rule: a metadata field whose date ``passed`` or that ``equals`` a value, or an age."""

    name: str
    field: str = ""
    equals: str | None = None
    passed: bool = False
    older_than_days: int | None = None

    def reason(self) -> str:
        if self.older_than_days is not None:
            return f"{self.name}: added more than {self.older_than_days} days ago"
        if self.passed:
            return f"{self.name}: {self.field} has passed"
        return f"{self.name}: {self.field} = {self.equals}"


@dataclass(frozen=True)
class Removal:
    """A photo a rule takes out, with its faces."""

    photo_id: int
    path: str
    sha256: str
    faces: list[int]
    rule: str
    reason: str


@dataclass
class RetentionReport:
    """What ``gallery retain`` found (and, unless a dry run, removed)."""

    gallery_id: str
    gallery_name: str
    dry_run: bool
    removals: list[Removal] = field(default_factory=list)
    log: str = ""

    @property
    def faces(self) -> int:
        return sum(len(r.faces) for r in self.removals)

    def to_dict(self) -> dict[str, Any]:
        return {"gallery": self.gallery_id, "name": self.gallery_name, "dry_run": self.dry_run,
                "photos": len(self.removals), "faces": self.faces, "log": self.log,
                "removals": [asdict(r) for r in self.removals]}


def load_rules(path: Path | None = None) -> list[Rule]:
    """The administrator's retention rules; ConfigError when the file is missing, unreadable or wrong."""
    path = path or policy.retention_policy_path()
    if not path.is_file():
        raise ConfigError(f"No retention policy at {path}: nothing is removed without the administrator's rules.",
                          hint="The administrator writes the rules there (see the README's retention section).")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"The retention policy {path} cannot be read ({exc}).") from exc
    rules = []
    for i, raw in enumerate(doc.get("rule", []), start=1):
        name = str(raw.get("name") or f"rule {i}")
        fld = str(raw.get("field", "")).strip().lower()
        age = raw.get("older_than_days")
        ok = ((age is not None and isinstance(age, int) and age >= 0 and not fld)
              or (fld and set(fld) <= _FIELD_OK and (raw.get("passed") is True) != ("equals" in raw)))
        if not ok:
            raise ConfigError(f"Retention rule {name!r} in {path} is not valid.",
                              hint="Each rule has field + passed = true, field + equals = VALUE, or older_than_days.")
        rules.append(Rule(name, fld, None if "equals" not in raw else str(raw["equals"]), bool(raw.get("passed")),
                          age))
    if not rules:
        raise ConfigError(f"The retention policy {path} has no [[rule]].")
    return rules


def _local_photos(g: Gallery, rule: Rule, now: datetime) -> list[int]:
    if rule.older_than_days is not None:  # every photo, faces or none
        return g.store.photos_added_before(format_utc(now - timedelta(days=rule.older_than_days)))
    text = f"{rule.field}<{now.date().isoformat()}" if rule.passed else f"{rule.field}={rule.equals}"
    faces = g.store.face_infos([int(i) for i in g.store.filtered_face_ids(parse_filters([text]))])
    return sorted({f.photo_id for f in faces.values()})


def plan_local(g: Gallery, rules: Sequence[Rule], now: datetime | None = None) -> list[Removal]:
    """The photos of a local gallery the rules take out (the first rule that matches a photo names it)."""
    now = now or datetime.now(UTC)
    out: dict[int, Removal] = {}
    paths, shas = dict(g.store.photo_paths()), dict(g.store.photo_sha256s())
    for rule in rules:
        for pid in _local_photos(g, rule, now):
            if pid not in out:
                out[pid] = Removal(pid, paths[pid], shas.get(pid, ""), g.store.faces_of_photo(pid), rule.name,
                                   rule.reason())
    return sorted(out.values(), key=lambda r: r.photo_id)


def retain_local(g: Gallery, rules: Sequence[Rule], *, dry_run: bool = False, who: str = "") -> RetentionReport:
    """Apply the rules to a local gallery: remove from store and index, then log each removal (fsynced)."""
    report = RetentionReport(g.id, g.name, dry_run, plan_local(g, rules), str(g.dir / LOG_FILE))
    if dry_run or not report.removals:
        return report
    g.remove([r.path for r in report.removals])
    at = utc_now_iso()
    with open(g.dir / LOG_FILE, "a", encoding="utf-8") as log:
        for r in report.removals:
            log.write(json.dumps({"at": at, "who": who or os.environ.get("USER", ""), "gallery": g.id, **asdict(r)},
                                 sort_keys=True) + "\n")
        log.flush()
        os.fsync(log.fileno())
    return report


def removed_local(g: Gallery) -> dict[int, dict[str, Any]]:
    """Face id -> its removal entry, from a local gallery's retention log (for 'left the gallery' notes)."""
    path = g.dir / LOG_FILE
    out: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            out.update({int(f): entry for f in entry.get("faces", [])})
    return out


def _server_condition(rule: Rule) -> tuple[str, list[Any]]:
    if rule.older_than_days is not None:
        return "p.added < now() - make_interval(days => %s)", [rule.older_than_days]
    column = next((c for key, (c, _) in FILTER_COLUMNS.items() if key == rule.field), None)
    expr = f"f.{column}::text" if column else "f.extras->>%s"
    args: list[Any] = [] if column else [rule.field]
    if rule.passed:
        return f"{expr} < %s", [*args, datetime.now(UTC).date().isoformat()]
    return f"{expr} = %s", [*args, rule.equals]


def retain_server(g: PgGallery, rules: Sequence[Rule], *, dry_run: bool = False) -> RetentionReport:
    """Apply the rules to a server gallery as its administrator: photos deleted (faces and their index entries
    with them) and each removal logged in ``retention_log``, in one transaction."""
    import psycopg

    report = RetentionReport(g.id, g.name, dry_run, [], f"{SCHEMA}.retention_log")
    try:
        with psycopg.connect(g.conninfo) as conn:
            try:  # an examiner's login may not even call it
                row = conn.execute(f"SELECT {SCHEMA}.is_admin()").fetchone()
            except psycopg.errors.InsufficientPrivilege:
                row = None
            if not (row and row[0]):
                raise GalleryError(f"Retention on server gallery '{g.name}' is the administrator's: this profile's "
                                   "login does not own the server's schema.",
                                   hint="Run it with the administrator's server profile (sketchface server add).")
            conn.execute(LOG_TABLE)
            seen: set[int] = set()
            for rule in rules:
                cond, args = _server_condition(rule)
                rows = conn.execute(
                    f"SELECT p.id, p.path, p.sha256, array_agg(f.id ORDER BY f.id) FROM {SCHEMA}.photos p "
                    f"JOIN {SCHEMA}.faces f ON f.photo_id = p.id AND f.gallery_id = p.gallery_id "
                    f"WHERE p.gallery_id = %s AND {cond} GROUP BY p.id ORDER BY p.id", [g.id, *args]).fetchall()
                for pid, path, sha, faces in rows:
                    if pid not in seen:
                        seen.add(pid)
                        report.removals.append(Removal(int(pid), str(path or ""), str(sha), [int(f) for f in faces],
                                                       rule.name, rule.reason()))
            if dry_run or not report.removals:
                conn.rollback()
                return report
            for r in report.removals:
                conn.execute(f"INSERT INTO {SCHEMA}.retention_log (gallery_id, photo_id, photo_sha256, path, faces, "
                             "rule, reason) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                             (g.id, r.photo_id, r.sha256, r.path, r.faces, r.rule, r.reason))
            conn.execute(f"DELETE FROM {SCHEMA}.photos WHERE gallery_id = %s AND id = ANY(%s)",
                         (g.id, [r.photo_id for r in report.removals]))
            conn.commit()
    except psycopg.Error as exc:
        raise GalleryError(f"Retention on server gallery '{g.name}' failed; nothing was removed ({exc}).") from exc
    return report


def retain(g: Gallery | PgGallery, rules: Sequence[Rule] | None = None, *, dry_run: bool = False,
           who: str = "") -> RetentionReport:
    """Apply the administrator's rules (loaded from the policy file when None) to a local or server gallery."""
    rules = load_rules() if rules is None else rules
    if isinstance(g, PgGallery):
        return retain_server(g, rules, dry_run=dry_run)
    return retain_local(g, rules, dry_run=dry_run, who=who)
