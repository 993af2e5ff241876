"""A gallery: its SQLite store (the truth) and its derived HNSW index, with remove/rebuild/verify.

Why the index file carries a signed SHA-256: hnswlib and usearch trust the file they load, and a
damaged or crafted one can crash the process (SIGSEGV) or answer wrongly. The store is as writable as
the file, so each save records the digest of the bytes written *and* this workstation's signature over
it (:mod:`engine.gallery.indexfile`); a load hashes and checks the very bytes it hands to the library,
and a file without a valid signature, with another digest or with an impossible layout is never
loaded: the index is rebuilt from the stored embeddings instead. After a load, a random sample of
stored embeddings is compared with the index's copies (:data:`LOAD_SAMPLE`), so a well-formed file
whose vectors were rewritten is rebuilt too. Why writers take a file lock: two processes adding photos each
hold the index in memory, and the last save would drop the other's faces; the lock serialises them,
and a writer that waited first brings its loaded index up to date with the store.

Why the index is reconciled on load: ingest commits each photo to the database first and saves the
index only now and then, so after a crash the index may lack the last faces (or still hold removed
ones). The database is the truth: on load, faces stored but missing from the index are re-added
from their stored embeddings and labels no longer in the store are marked deleted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import settings as settings_mod
from engine.errors import GalleryError, IndexCorrupt
from engine.fsutil import disk_error, sha256_file
from engine.gallery.compact import INDEX_FILES, UsearchI8Index, compact_hint, parse_index_kind, same_vector
from engine.gallery.index import MIN_CHUNK, HnswIndex
from engine.gallery.indexfile import seal, seal_problem
from engine.gallery.ingest import ingest
from engine.gallery.metadata import import_metadata
from engine.gallery.source import LocalSearchable
from engine.gallery.store import GalleryStore
from engine.gallery.tuning import stored_tuning, tune_gallery, tuning_note
from engine.gallery.writerlock import WriterLock, writer_lock_path
from engine.progress import CancelToken, ProgressCallback, Reporter, check
from engine.settings import Settings

if TYPE_CHECKING:
    from engine.faces import FacePipeline
    from engine.gallery.ingest import IngestReport
    from engine.gallery.metadata import MetadataReport

log = logging.getLogger(__name__)

# A temp index file older than this is debris of a crashed save, not one in progress.
STALE_TMP_AGE_S = 3600.0

# Stored embeddings compared with the index after every load: a rewritten vectors section is found
# with probability 1 - (1 - changed share) ** LOAD_SAMPLE (all of it at once: certainly).
LOAD_SAMPLE = 64

DB_FILE = "gallery.sqlite"
INDEX_FILE = INDEX_FILES["hnswlib"]
DIM = 512
_BATCH = 10_000
AnyIndex = HnswIndex | UsearchI8Index  # the index kinds a local gallery holds (engine.gallery.compact)


@dataclass(frozen=True)
class GalleryInfo:
    """What front-ends show about a gallery (and what search manifests record)."""

    id: str
    name: str
    created: str
    path: str
    model_sha256: str | None
    content_version: int
    photos: int
    faces: int
    ok: int
    no_face: int
    error: int
    with_metadata: int
    index: dict[str, int] = field(default_factory=dict)
    index_file_bytes: int = 0
    recall: dict[str, Any] = field(default_factory=dict)  # the last ef self-measurement (engine.gallery.tuning)
    index_kind: str = "hnswlib"  # "hnswlib" (float32) or "usearch_i8" (compact, exact re-rank)
    hint: str = ""  # the offer of the compact index past its threshold ("" when none)
    recall_warning: str = ""  # the index missed its recall target at its largest setting (tuning.tuning_note)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VerifyReport:
    """Index <-> store consistency. ``ok`` only when counts, labels and sampled vectors all agree."""

    ok: bool
    store_faces: int
    index_live: int
    index_deleted: int
    missing_count: int
    extra_count: int
    missing: list[int]
    extra: list[int]
    sample_checked: int
    sample_mismatched: int
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RemoveReport:
    photos: int
    faces: int


class Gallery:
    """One gallery folder: ``gallery.sqlite`` (truth) and ``index.hnsw`` (derived, rebuildable).

    The index loads lazily on first use (search, ingest, verify), so listing galleries is cheap.
    Mutations (ingest, remove, rebuild, metadata) are serialised by a gallery lock; searches run
    beside them under the index's reader/writer lock.
    """

    def __init__(self, directory: Path, settings: Settings | None = None) -> None:
        self.dir = Path(directory)
        self.settings = settings or settings_mod.load()
        self.store = GalleryStore(self.dir / DB_FILE)
        meta = self.store.meta()
        if "id" not in meta or "name" not in meta:
            raise GalleryError(f"{self.dir} is not a complete gallery (its metadata is missing).")
        self.id: str = meta["id"]
        # One writer per gallery across threads and processes; re-entrant within a thread.
        self.write_lock = WriterLock(writer_lock_path(self.dir), self.store.meta()["name"], self._refresh_index)
        self._index: AnyIndex | None = None
        self._index_mutex = threading.Lock()
        # Left by a crash during a save. Only old ones: a fresh one may belong to a save that another
        # Gallery object (another thread or process) is writing right now.
        cutoff = time.time() - STALE_TMP_AGE_S
        for name in INDEX_FILES.values():
            for stale in self.dir.glob(f".{name}.*.tmp"):
                with contextlib.suppress(OSError):
                    if stale.stat().st_mtime < cutoff:
                        stale.unlink()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gallery({self.id!r}, {self.name!r})"

    @property
    def name(self) -> str:
        return self.store.meta()["name"]

    @property
    def index_kind(self) -> str:
        """The stored kind of the index: ``hnswlib`` (float32, the default) or ``usearch_i8`` (compact)."""
        return self.store.meta().get("index_kind", "hnswlib")

    @property
    def index_path(self) -> Path:
        return self.dir / INDEX_FILES[self.index_kind]

    @property
    def model_sha256(self) -> str | None:
        return self.store.meta().get("model_sha256")

    @property
    def content_version(self) -> int:
        return self.store.content_version

    @property
    def ef(self) -> int:
        """Query ef: the self-tuned value once measured (engine.gallery.tuning), else the settings' default."""
        tuned = stored_tuning(self.store.meta())
        return tuned.ef if tuned is not None else self.settings.hnsw_ef

    def recall_record(self) -> dict[str, Any]:
        """The last recall self-measurement ({} before the first import), for info and run manifests."""
        tuned = stored_tuning(self.store.meta())
        return tuned.to_dict() if tuned is not None else {}

    def retune(self) -> None:
        """Measure recall against an exact scan and set ef to the smallest value reaching the target."""
        with self.write_lock:
            tune_gallery(self)

    def close(self) -> None:
        self.store.close()

    @property
    def index_params(self) -> dict[str, int]:
        """The index's parameters without loading it (an exact search never needs the index in memory)."""
        if self._index is not None:
            return dict(self._index.params)
        meta = self.store.meta()
        return {"M": int(meta.get("hnsw_M", self.settings.hnsw_m)),
                "ef_construction": int(meta.get("hnsw_ef_construction", self.settings.hnsw_ef_construction)),
                "ef": self.ef}

    def info(self) -> GalleryInfo:
        meta, counts = self.store.meta(), self.store.counts()
        params = self.index_params
        size = self.index_path.stat().st_size if self.index_path.exists() else 0
        return GalleryInfo(self.id, meta["name"], meta.get("created", ""), str(self.dir), meta.get("model_sha256"),
                           int(meta.get("content_version", 0)), counts["photos"], counts["faces"], counts["ok"],
                           counts["no_face"], counts["error"], counts["with_metadata"], params, size,
                           self.recall_record(), self.index_kind, compact_hint(self.index_kind, counts["faces"], self.id),
                           tuning_note(self.recall_record()))

    # -- the index ---------------------------------------------------------------------------
    @property
    def index(self) -> AnyIndex:
        """The index of the gallery's kind, loaded (``ef`` restored) and reconciled with the store on first use."""
        with self._index_mutex:
            if self._index is None:
                self._index = self._load_index()
            return self._index

    def _new_index(self, capacity: int, M: int | None = None, ef_construction: int | None = None,
                   kind: str | None = None) -> AnyIndex:
        meta = self.store.meta()
        cls = UsearchI8Index if (kind or self.index_kind) == "usearch_i8" else HnswIndex
        return cls(DIM, M=M or int(meta.get("hnsw_M", self.settings.hnsw_m)),
                   ef_construction=ef_construction or int(meta.get("hnsw_ef_construction",
                                                                   self.settings.hnsw_ef_construction)),
                   ef=self.ef, capacity=capacity)

    def _read_index(self, expected_sha256: str | None) -> AnyIndex:
        """The saved index file, hashed, checked and read by the class of the gallery's kind.

        Raises ``IndexCorrupt`` when its bytes differ from ``expected_sha256``, its layout is not one the
        library can read safely, or the library cannot read it.
        """
        if self.index_kind == "usearch_i8":
            return UsearchI8Index.load(self.index_path, DIM, ef=self.ef, expected_sha256=expected_sha256)
        return HnswIndex.load(self.index_path, DIM, ef=self.ef, expected_sha256=expected_sha256)

    def _load_index(self) -> AnyIndex:
        index: AnyIndex | None = None
        problem = self.index_seal_problem() if self.index_path.exists() else None
        if problem is not None:  # never handed to hnswlib: a file we did not write can crash the process
            log.warning("gallery %s: %s; rebuilding the index from the stored embeddings", self.id, problem)
        if self.index_path.exists() and problem is None:
            try:
                index = self._read_index(self.store.meta().get("index_sha256"))
                if (mismatch := self._sample_problem(index)) is not None:
                    index = None
                    problem = mismatch
                    log.warning("gallery %s: %s; rebuilding the index from the stored embeddings", self.id, mismatch)
            except IndexCorrupt as exc:
                problem = str(exc)
                log.warning("%s; rebuilding it from the stored embeddings", exc)
        if index is None:
            index = self._new_index(self.store.face_count() + MIN_CHUNK)
        if (self._reconcile(index) or problem is not None) and self.write_lock.try_acquire():
            try:  # saved only when no other process is writing; otherwise this copy serves from memory
                self._save(index)
            finally:
                self.write_lock.release()
        return index

    def _sample_problem(self, index: AnyIndex, sample: int = LOAD_SAMPLE) -> str | None:
        """Whether sampled stored embeddings differ from the index's copies (a rewritten vectors section).

        The sample is drawn afresh each time, so whoever rewrites part of the file cannot know which
        vectors to leave alone.
        """
        labels = np.intersect1d(self.store.face_ids(), index.all_labels(), assume_unique=True)
        if not len(labels):
            return None
        picked = np.random.default_rng().choice(labels, size=min(sample, len(labels)), replace=False)
        stored = self.store.embeddings(picked, DIM)
        try:
            indexed = index.get(picked)
        except IndexCorrupt:
            return "the index file lacks faces its labels name"
        differ = sum(not same_vector(self.index_kind, indexed[i], stored[i]) for i in range(len(picked)))
        if differ:
            return (f"{differ} of {len(picked)} sampled vectors in the index file differ from the stored embeddings "
                    "(the file was changed)")
        return None

    def index_seal_problem(self) -> str | None:
        """Why the recorded digest of the index file cannot be trusted (unsigned, bad signature), or None."""
        meta = self.store.meta()
        return seal_problem(self.id, self.index_kind, self.index_path.name, meta.get("index_sha256"),
                            meta.get("index_signature"))

    def index_file_problem(self) -> str | None:
        """Why the index file must not be loaded (digest not signed by this workstation, or the file's bytes
        differ from it), or None. Hashes the file itself: a digest cache can be edited as the store can."""
        if (problem := self.index_seal_problem()) is not None:
            return problem
        if sha256_file(self.index_path) != self.store.meta().get("index_sha256"):
            return ("the index file does not match the SHA-256 recorded when it was saved (changed or damaged "
                    "outside SketchFace)")
        return None

    def _refresh_index(self) -> None:
        """Bring a loaded index up to date with the store (another process may have written meanwhile)."""
        if self._index is not None and self._reconcile(self._index):
            self._save(self._index)

    def _save(self, index: AnyIndex, kind: str | None = None) -> None:
        """Save an index and record the SHA-256 of the bytes written with this workstation's signature over it
        (both checked before the next load; one transaction, so a digest never stands with another's signature).

        A new ``kind`` is recorded after its file and digest: a crash between leaves the old kind with a
        digest its file does not match, so it is rebuilt, never trusted.
        """
        old_path = self.index_path
        new_kind = kind or self.index_kind
        path = self.dir / INDEX_FILES[new_kind]
        try:
            digest = index.save_with_digest(path)
        except OSError as exc:  # ENOSPC already comes as DiskFull; a read-only or forbidden folder here
            raise disk_error(exc.errno, self.dir, f"the index file {path.name}") or exc from exc
        self.store.set_metas({"index_sha256": digest, "index_signature": seal(self.id, new_kind, path.name, digest)})
        if kind is not None and path != old_path:
            self.store.set_meta("index_kind", kind)
            old_path.unlink(missing_ok=True)

    def _reconcile(self, index: AnyIndex) -> bool:
        """Re-add stored faces the index lacks, mark deleted labels the store no longer has."""
        db_ids = self.store.face_ids()
        in_index = index.all_labels()
        extra = np.setdiff1d(in_index, db_ids, assume_unique=True)
        missing = np.setdiff1d(db_ids, in_index, assume_unique=True)
        newly_deleted = index.remove(extra)
        for start in range(0, len(missing), _BATCH):
            chunk = missing[start:start + _BATCH]
            index.add(self.store.embeddings(chunk, DIM), chunk)
        if len(missing) or newly_deleted:
            log.info("gallery %s: index reconciled (%d re-added, %d marked deleted)", self.id, len(missing),
                     newly_deleted)
        return bool(len(missing) or newly_deleted)

    def save_index(self) -> None:
        if self._index is not None:
            with self.write_lock:
                self._save(self._index)

    def set_model_sha256(self, sha: str) -> None:
        """Adopt the ArcFace digest of the first import; refuse a different one once faces exist."""
        current = self.model_sha256
        if current == sha:
            return
        if current and self.store.face_count():
            raise GalleryError(
                f"Gallery '{self.name}' was embedded with ArcFace file {current[:12]}…, but the installed one is "
                f"{sha[:12]}…; mixing them would make scores meaningless.",
                hint="Install the ArcFace file the gallery was built with, or create a new gallery.")
        self.store.set_meta("model_sha256", sha, bump=True)

    # -- operations --------------------------------------------------------------------------
    def add(self, folders: Sequence[Path | str], pipeline: FacePipeline | None = None,
            progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
            workers: int | None = None, batch: int | None = None) -> IngestReport:
        """Import image files and folders (recursively); see :func:`engine.gallery.ingest.ingest`."""

        report = ingest(self, [Path(f) for f in folders], pipeline=pipeline, progress=progress, cancel=cancel,
                        workers=workers, batch=batch)
        if report.faces or report.updated:
            self.retune()
        return report

    def remove(self, photo_paths: Sequence[Path | str]) -> RemoveReport:
        """Forget photos (files, or every photo under a folder): store rows deleted, index labels marked."""
        resolved = [str(Path(p).expanduser().resolve()) for p in photo_paths]
        with self.write_lock:
            photo_ids = self.store.photo_ids_for_paths(resolved)
            faces = self.store.remove_photos(photo_ids)
            if faces:
                self.index.remove(faces)
                self.save_index()
        return RemoveReport(len(photo_ids), len(faces))

    def rebuild(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                M: int | None = None, ef_construction: int | None = None, kind: str | None = None) -> None:
        """Build a fresh index from the stored embeddings (compacts deletions; may change M/ef_construction
        and the index kind: ``hnsw`` / ``compact``, see :func:`engine.gallery.compact.parse_index_kind`).

        The old index keeps serving (and stays on disk) until the new one is complete and saved.
        """
        with self.write_lock:
            total = self.store.face_count()
            kind = parse_index_kind(kind) if kind else self.index_kind
            fresh = self._new_index(max(total, 1) + MIN_CHUNK, M, ef_construction, kind)
            reporter = Reporter(progress, total)
            for ids, vecs in self.store.iter_embeddings(_BATCH, DIM):
                check(cancel)
                fresh.add(vecs, ids)
                reporter.step(len(ids), "indexing stored embeddings")
            check(cancel)
            self._save(fresh, kind)
            if M or ef_construction:
                self.store.set_meta("hnsw_M", str(fresh.params["M"]))
                self.store.set_meta("hnsw_ef_construction", str(fresh.params["ef_construction"]))
            with self._index_mutex:
                self._index = fresh
            self.retune()
            reporter.emit("done", force=True)

    def verify(self, sample: int = 256) -> VerifyReport:
        """Compare the index with the store: counts, missing/extra labels, a sample of vectors.

        Checks the in-memory index when one is loaded, else the saved file as it is (not repaired).
        """
        problems = self.store.integrity_problems()
        index = self._index
        if index is None:
            if not self.index_path.exists():
                index = self._new_index(1)
                if self.store.face_count():
                    problems.append("the index file is missing")
            elif (problem := self.index_seal_problem()) is not None:
                problems.append(problem)  # not loaded: hnswlib trusts the file and may crash on a crafted one
                index = self._new_index(1)
            else:
                try:
                    index = self._read_index(self.store.meta().get("index_sha256"))
                except IndexCorrupt as exc:
                    problems.append(str(exc))
                    index = self._new_index(1)
        db_ids = self.store.face_ids()
        labels = index.all_labels()
        missing = np.setdiff1d(db_ids, labels, assume_unique=True)
        extra = [int(x) for x in np.setdiff1d(labels, db_ids, assume_unique=True) if not index.is_deleted(int(x))]
        deleted = len(labels) - len(extra) - (len(db_ids) - len(missing))
        present = np.intersect1d(db_ids, labels, assume_unique=True)
        rng = np.random.default_rng(0)
        picked = np.sort(rng.choice(present, size=min(sample, len(present)), replace=False)) if len(present) else present
        mismatched = 0
        if len(picked):
            stored = self.store.embeddings(picked, DIM)
            for row, label in enumerate(picked):
                try:
                    vec = index.get(np.asarray([label]))[0]
                except IndexCorrupt:
                    mismatched += 1
                    continue
                if not same_vector(self.index_kind, vec, stored[row]):
                    mismatched += 1
        if len(missing):
            problems.append(f"{len(missing)} stored face(s) missing from the index")
        if extra:
            problems.append(f"{len(extra)} index label(s) with no stored face")
        if mismatched:
            problems.append(f"{mismatched} of {len(picked)} sampled vectors differ between index and store")
        live = len(labels) - deleted
        return VerifyReport(not problems, len(db_ids), live, deleted, len(missing), len(extra),
                            [int(x) for x in missing[:20]], extra[:20], len(picked), mismatched, problems)

    def import_metadata(self, csv_path: Path | str, skip_bad: bool = False) -> MetadataReport:
        return import_metadata(self, Path(csv_path), skip_bad=skip_bad)

    def searchable(self, mode: str = "auto") -> LocalSearchable:
        """This gallery as search runs over it: ``exact`` scan, ``hnsw`` with exact re-rank, or ``auto``
        (exact while its measured scan time stays under the bound, :mod:`engine.gallery.exact`)."""
        return LocalSearchable(self, mode)

    def thumbnail(self, face_id: int) -> bytes | None:
        """JPEG bytes of a face's aligned 112x112 crop (for result grids)."""
        return self.store.thumbnail(face_id)

    def bad_photos(self) -> list[tuple[str, str, str]]:
        return self.store.bad_photos()
