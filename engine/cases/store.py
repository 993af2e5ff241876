"""The case store: an open case, its folder and database, and the one write path that always audits and signs.

A case is a folder: ``case.sqlite`` (WAL) plus ``sketches/``, ``generated/``, ``attachments/``,
``reports/``, ``queries/`` and ``thumbnails/``. Every change goes through :meth:`Case.write`, which
first checks that the record it extends verifies (so a write can never sign over a tampered case:
a case that does not verify is read-only), commits the change and its audit entry in one
transaction, and then refreshes the audit anchors kept outside the log (sidecar file, registry,
the verified-head record in the config folder).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine import examiners, settings
from engine.cases import anchor, audit, authorship, db, integrity, ledger, records, registry
from engine.errors import CaseError, ConfigError, EngineError
from engine.fsutil import atomic_write_bytes, fsync_dir, private_dir, sha256_bytes

log = logging.getLogger(__name__)

STATUSES = ("open", "closed", "archived")
SIDECAR_ANCHOR = "audit_anchor.json"
REGISTRY_ANCHOR_ALTERED = ("The workstation case registry's record of this case's audit head does not carry this "
                           "workstation's valid signature: it was altered, or written under another workstation key.")
LEDGER_ANCHOR_ALTERED = ("This workstation's signed record of the case's last verified head (config folder) does not "
                         "verify: it was altered, or written under another workstation key.")


class CaseReadOnly(CaseError):
    """A write was refused: the case does not verify, or its folder is write-protected. Nothing changed."""

    title = "Case is read-only"


def resolve_user(user: str | None) -> str:
    """Who is acting: the given name, else the acting examiner profile, else the examiner from settings, else
    the OS account. The name is a label; the entry's author block (:meth:`Case.log`) is what is signed."""
    if user and user.strip():
        return user.strip()
    try:
        profile = examiners.current()
    except CaseError:
        profile = None
    if profile is not None:
        return profile.name
    try:
        name = settings.load().examiner
    except (ConfigError, OSError):
        name = ""
    if name.strip():
        return name.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class CaseInfo:
    """The case's details as the examiner entered them."""

    case_id: str
    case_number: str
    title: str
    examiner: str
    witnesses: tuple[str, ...]
    incident_date: str
    status: str
    notes: str
    created_at: str
    updated_at: str
    folder: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["witnesses"] = list(self.witnesses)
        return d


class Case:
    """An open case: its folder and database connection. Close it (or use ``with``) when done.

    The connection may be used from another thread than the one that opened it (the desktop app's
    engine thread); writes are serialised by a lock.
    """

    def __init__(self, folder: Path, conn: sqlite3.Connection, case_id: str, *, read_only: bool = False) -> None:
        self.folder = folder
        self.conn = conn
        self.case_id = case_id
        self.read_only = read_only  # opened from a write-protected folder: verify and export only
        self._lock = threading.RLock()
        self._depth = 0

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (safe to call twice)."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    @property
    def info(self) -> CaseInfo:
        """The case details, read fresh from the database."""
        r = self.conn.execute("SELECT * FROM case_info WHERE id = 1").fetchone()
        if r is None:
            raise CaseError(f"The case in {self.folder} has no case details: its database is damaged.")
        return CaseInfo(self.case_id, r["case_number"], r["title"], r["examiner"],
                        tuple(json.loads(r["witnesses"])), r["incident_date"], r["status"], r["notes"],
                        r["created_at"], r["updated_at"], str(self.folder))

    def file(self, rel: str) -> Path:
        """Absolute path of a file stored in the case, refusing paths that leave the case folder."""
        p = (self.folder / rel).resolve()
        if not p.is_relative_to(self.folder.resolve()):
            raise CaseError(f"Stored path {rel!r} points outside the case folder; the case database was altered.")
        return p

    def read_file(self, rel: str, expected_sha256: str | None = None) -> bytes:
        """Bytes of a stored file, checked against its recorded SHA-256 when one is given."""
        try:
            data = self.file(rel).read_bytes()
        except OSError as exc:
            raise CaseError(f"Case file {rel} cannot be read: {exc}.") from exc
        if expected_sha256 and sha256_bytes(data) != expected_sha256:
            raise CaseError(f"Case file {rel} was changed after it was stored (SHA-256 differs).",
                            hint="Run 'sketchface case verify' and restore the file from an export.")
        return data

    def store_file(self, sub: str, name: str, data: bytes) -> str:
        """Write a file atomically into a case subfolder; return its case-relative path."""
        rel = f"{sub}/{name}"
        target = self.file(rel)
        if target.exists():
            self._same_or_refuse(target, rel, data)
            return rel
        atomic_write_bytes(target, data)
        return rel

    def _same_or_refuse(self, target: Path, rel: str, data: bytes) -> None:
        """A stored file is never overwritten: one that differs from what is stored again was altered.

        Stored names carry their content's digest, so the same name must hold the same bytes;
        overwriting a changed one would erase the evidence ``case verify`` reports.
        """
        if target.read_bytes() != data:
            raise CaseReadOnly(f"The stored file {rel} of case {self.case_id} no longer holds what was stored under "
                               "that name; it was not overwritten, and nothing was changed.",
                               hint=f"Run 'sketchface case verify {self.case_id}' to see what was altered.")

    def store_files(self, sub: str, files: list[tuple[str, bytes]]) -> list[str]:
        """Write many small files into one subfolder: each fsynced and renamed, the folder fsynced once.

        Same guarantees as :meth:`store_file` for each file at half the fsyncs, which matters when a
        search stores hundreds of candidate thumbnails.
        """
        folder = private_dir(self.file(sub))
        out, written = [], False
        for name, data in files:
            rel = f"{sub}/{name}"
            target = self.file(rel)
            out.append(rel)
            if target.exists():
                self._same_or_refuse(target, rel, data)
                continue
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written = True
        if written:
            fsync_dir(folder)
        return out

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction for a change and its audit entries; anchors refreshed after commit.

        The record being extended is checked first, inside the transaction (so no other writer can
        slip in between): a case that does not verify is never signed over; it is read-only
        (:class:`CaseReadOnly`), and the caller's change is not made.
        """
        with self._lock:
            if self._depth:  # nested: part of the caller's transaction
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            if self.read_only:
                raise self._write_protected()
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                self._check_writable()
                yield self.conn
                self._sign_head()
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            self._refresh_anchors()

    def check_writable(self) -> None:
        """Raise :class:`CaseReadOnly` now if a write would be refused (for commands that prepare work first)."""
        if self.read_only:
            raise self._write_protected()
        with self._lock:
            self._check_writable()

    def _check_writable(self) -> None:
        anchor.public_key_hex()  # a missing workstation key is said as such, not as a case that fails to verify
        report = integrity.check_before_write(self)
        if report is not None:
            raise self._refusal(report)

    def _write_protected(self) -> CaseReadOnly:
        return CaseReadOnly(f"Case {self.case_id} in {self.folder} is write-protected: it can be verified and "
                            "exported, not changed.",
                            hint="Copy the case folder to writable storage, or make it writable, to change it.")

    def _refusal(self, report: audit.AuditReport) -> CaseReadOnly:
        """One message: which case, that it is read-only, the first thing wrong, and how to hand it over."""
        try:
            number = f"{self.info.case_number} "
        except (CaseError, sqlite3.Error, ValueError, TypeError):
            number = ""
        n = len(report.findings)
        more = f" ({n - 1} more finding{'s' if n > 2 else ''})" if n > 1 else ""
        sig = report.signature or {}
        foreign = bool(sig) and sig.get("valid") and not sig.get("this_workstation")
        why = (" It is signed by another workstation's key and was never imported here: only 'sketchface case "
               "import' accepts a case from elsewhere." if foreign else "")
        return CaseReadOnly(
            f"Case {number}({self.case_id}) is read-only: its record does not verify, so nothing was written to it. "
            f"{report.findings[0].message}{more}{why}",
            hint=f"See every finding with 'sketchface case verify {self.case_id}'; export it for examination with "
                 f"'sketchface case export {self.case_id} --out FILE.zip --allow-broken' (that export is not "
                 "recorded in the case).")

    def log(self, action: str, obj: str, *, user: str, inputs: dict[str, Any] | None = None,
            outputs: dict[str, Any] | None = None, details: dict[str, Any] | None = None,
            records: Iterable[tuple[str, Any]] = ()) -> audit.AuditEntry:
        """Append an audit entry; only valid inside :meth:`write`.

        The entry names the acting examiner profile (key fingerprint and OS account) and is signed
        with that profile's key; without a chosen profile nothing is written (:class:`examiners.NoExaminer`).

        Args:
            records: the (table, key) records this change wrote; the entry carries their digests so
                verification can replay the log against every row (see :mod:`engine.cases.records`).
        """
        if not self._depth:
            raise RuntimeError("Case.log must be called inside Case.write()")
        details = dict(details or {})
        refs = list(records)
        if refs:
            details["records"] = _record_digests(self.conn, refs)
        profile = examiners.require_current()
        return audit.append(self.conn, self.case_id, user=user, action=action, obj=obj,
                            inputs=inputs, outputs=outputs, details=details, author=profile.author(),
                            signer=lambda body: examiners.sign(profile, authorship.AUDIT_ENTRY_PURPOSE, body))

    def _sign_head(self) -> None:
        """Sign the audit head with the workstation key, in the transaction that moved it."""
        head = audit.read_anchor(self.conn)
        if head is None:
            return
        try:
            current = anchor.read_signature(self.conn)
        except ValueError:
            current = None
        if current is not None and (current.case_id, current.count, current.head) == (self.case_id, *head):
            return
        try:
            anchor.write_signature(self.conn, anchor.sign_head(self.case_id, *head))
        except OSError as exc:  # an unsigned head would make the case read-only: keep the change out instead
            raise CaseError(f"The audit head of case {self.case_id} could not be signed ({exc}); nothing was "
                            "changed.", hint="Check that the workstation key can be read.") from exc

    def _refresh_anchors(self) -> None:
        a = audit.read_anchor(self.conn)
        if a is None:
            return
        count, head = a
        ledger.record_quietly(self.case_id, count, head)  # this workstation checked, then wrote, up to here
        try:
            sidecar = {"case_id": self.case_id, "count": count, "head": head}
            registry.write_lagging(self.folder / SIDECAR_ANCHOR, json.dumps(sidecar, indent=2))
            registry.update_anchor(self.case_id, count, head)
        except (OSError, EngineError) as exc:  # the change is committed; a lagging anchor copy is allowed
            log.warning("Could not update the audit anchor copies of case %s: %s", self.case_id, exc)

    def anchors(self, expected: tuple[int | None, str] | None = None) -> list[audit.Anchor]:
        """Every anchor available for this case: meta row (exact), sidecar, registry, and an expected one."""
        out: list[audit.Anchor] = []
        try:
            meta = audit.read_anchor(self.conn)
        except (ValueError, KeyError, TypeError):
            meta = None  # reported by the integrity check of the meta table
        if meta is not None:
            out.append(audit.Anchor("case meta record", meta[0], meta[1], exact=True))
        sidecar = self.folder / SIDECAR_ANCHOR
        if sidecar.exists():
            try:
                d = json.loads(sidecar.read_text(encoding="utf-8"))
                out.append(audit.Anchor(f"anchor file {SIDECAR_ANCHOR}", int(d["count"]), str(d["head"])))
            except (OSError, ValueError, KeyError, TypeError):
                out.append(audit.Anchor(f"anchor file {SIDECAR_ANCHOR} (unreadable)", 0, ""))
        try:
            reg = registry.anchor_record(self.case_id)
            verified = ledger.lookup(self.case_id)
        except EngineError as exc:  # the workstation key is unavailable: say so, never call the records altered
            out.append(audit.Anchor("workstation records", 0, "", problem="The workstation case registry and the "
                                    f"verified-head record could not be checked: {exc}"))
            reg = verified = None
        if reg is not None:
            out.append(audit.Anchor("workstation case registry", reg[0], reg[1],
                                    problem="" if reg[2] else REGISTRY_ANCHOR_ALTERED))
        if verified is not None:
            out.append(audit.Anchor("verified-head record (config folder)", verified.count, verified.head,
                                    problem="" if verified.authentic else LEDGER_ANCHOR_ALTERED))
        if expected is not None:
            count = expected[0]
            if count is None:  # a bare head hash: the entry that has it, wherever it is
                count = next((e.seq for e in self.audit_entries() if e.hash == expected[1]), -1)
            out.append(audit.Anchor("expected head given", count, expected[1]))
        return out

    def verify(self, expected: tuple[int | None, str] | None = None) -> audit.AuditReport:
        """Verify the audit chain against all anchors, and every record and file against the chain.

        Args:
            expected: (count, head) from a printed report or an earlier verification, if at hand
                (count None: the head alone, as printed).
        """
        return integrity.verify_case(self, self.anchors(expected))

    def audit_entries(self) -> list[audit.AuditEntry]:
        """The stored audit entries in storage order."""
        return audit.read_entries(self.conn)

    def snapshot(self, target: Path) -> tuple[int, str] | None:
        """Copy the database consistently (SQLite backup API, not a file copy of a live WAL database).

        The copy uses a rollback journal so it is one self-contained file; returns its audit anchor.
        """
        dest = sqlite3.connect(str(target))
        try:
            with self._lock:
                self.conn.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")
            return audit.read_anchor(dest)
        finally:
            dest.close()


def _record_digests(conn: sqlite3.Connection, refs: list[tuple[str, Any]]) -> dict[str, str]:
    return records.digests(conn, refs)


def open_case_folder(folder: Path) -> Case:
    """Open the case stored in ``folder`` (no registry involved)."""
    dbp = folder / db.DB_NAME
    if not dbp.is_file():
        raise CaseError(f"{folder} is not a SketchFace case folder (no {db.DB_NAME}).")
    read_only = False
    try:
        try:
            conn = db.connect(dbp)
            version = db.get_meta(conn, "schema_version")
        except sqlite3.OperationalError:
            if _writable(folder, dbp):
                raise
            conn, read_only = db.connect_read_only(dbp), True  # write-protected media: verify, export, no writes
            version = db.get_meta(conn, "schema_version")
        case_id = db.get_meta(conn, "case_id")
    except sqlite3.DatabaseError as exc:
        raise CaseError(f"The case database {dbp} cannot be read: {exc}.",
                        hint="Restore the case from an exported archive." if _writable(folder, dbp) else
                        "Its folder is write-protected: copy it to writable storage and try again.") from exc
    if case_id is None or version is None:
        conn.close()
        raise CaseError(f"The case database {dbp} is incomplete (no case id or schema version).")
    if not str(version).isdigit():
        conn.close()
        raise CaseError(f"The case database {dbp} is damaged: its schema version {version!r} is not a number.",
                        hint="Restore the case from an exported archive.")
    if int(version) > db.SCHEMA_VERSION:
        conn.close()
        raise CaseError(f"Case {case_id} was written by a newer SketchFace (format {version}).",
                        hint="Update SketchFace to open it.")
    return Case(folder, conn, case_id, read_only=read_only)


def _writable(folder: Path, dbp: Path) -> bool:
    """Whether the case folder and its database can be written (False on read-only media or rights)."""
    return os.access(folder, os.W_OK) and os.access(dbp, os.W_OK)
