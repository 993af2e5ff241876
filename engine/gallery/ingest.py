"""Import folders of photos into a gallery: scan, skip unchanged, decode in parallel, detect, embed in batches.

How the work flows: a thread pool reads, hashes and decodes the next files while the calling thread
runs the models: detection per photo, then one ArcFace batch over the crops of several photos, then
one transaction per photo. The two onnxruntime sessions run one after the other, never side by side:
each already uses every core, and two spinning thread pools on the same cores slow both down. Why a
transaction per photo: a SIGKILL at any moment leaves every photo either fully recorded or not at
all, so running the import again finishes the job with no duplicate and no loss; the index, saved
every so often and at the end, is reconciled with the store when next loaded.

What is read: regular files only. A folder handed over by someone else may hold a FIFO (reading it
waits forever), a link to a device such as ``/dev/zero`` (reading it never ends), a link that loops
back on itself or points nowhere: each is skipped with its reason in the report (never recorded, so a
fixed folder is read next time), and the import goes on. Links are resolved (the photo is recorded under
its target's path), and every file is opened once, checked to be a regular file through that open
handle, and read up to :data:`MAX_FILE_BYTES` and no further.

Suspect files: an image that decodes but breaks its own format's integrity rules (a JPEG whose
compressed data a strict walk rejects, a PNG chunk with a wrong CRC; :func:`engine.faces.decode.integrity_problem`)
is still indexed, because the damage may spare the face and the file may be the only copy, but it is
recorded with the note ``suspect: <why>`` and listed in the report's ``suspect`` list (and by ``gallery
info --bad``), so an examiner checks any match on it against the original. JPEG carries no checksum:
a file not flagged is not thereby proven intact.

Files are skipped when path, size and mtime are unchanged; when only size/mtime changed the SHA-256
decides. Bad files (empty, truncated, not an image, decompression bombs) and faceless images are
recorded with their reason, so a re-run does not retry them until they change. Unexpected failures
(a model error, out of memory) are reported but not recorded, so the next run retries them.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import BadImage, GalleryError
from engine.faces import blur_score, encode_jpeg, face_quality, is_image_name, load_image, load_pipeline
from engine.faces.decode import integrity_problem
from engine.fsutil import sha256_bytes
from engine.gallery.modelhash import recognizer_sha256
from engine.gallery.store import FaceRecord, PhotoRecord
from engine.progress import CancelToken, ProgressCallback, ProgressEvent, check

if TYPE_CHECKING:
    from engine.faces import FacePipeline
    from engine.gallery.gallery import Gallery
    from engine.types import FaceBox

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 512 * 1024 * 1024
SUSPECT_PREFIX = "suspect: "
SAVE_EVERY_S = 30.0
THUMB_QUALITY = 85


@dataclass(frozen=True)
class BadFile:
    """A scanned file that is not indexed, and why."""

    path: str
    status: str  # "error" (could not be read/decoded), "no_face", "skipped" (not a regular file), "suspect"
    reason: str


@dataclass
class IngestReport:
    """What one ``gallery add`` did. ``bad`` lists every scanned file not indexed (this run or before),
    skipped ones (not regular files) included; ``suspect`` lists indexed files that fail their format's
    integrity check."""

    scanned: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    no_face: int = 0
    errors: int = 0
    faces: int = 0
    skipped: int = 0
    elapsed_s: float = 0.0
    bad: list[BadFile] = field(default_factory=list)
    failed: list[BadFile] = field(default_factory=list)
    suspect: list[BadFile] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Prepared:
    path: str
    size: int
    mtime_ns: int
    sha256: str | None = None
    status: str = "ok"
    error: str | None = None
    width: int | None = None
    height: int | None = None
    boxes: list[FaceBox] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)
    image: np.ndarray | None = None  # decoded BGR, until faces are detected
    touch_photo_id: int | None = None  # same content as recorded: only refresh size/mtime
    replaces: bool = False
    failure: str | None = None  # unexpected error: reported, not recorded
    suspect: str | None = None  # decodes, but fails its format's integrity check: indexed with a note


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a file: reading it could wait forever"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a file (such as /dev/zero): reading it may never end"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    if stat.S_ISDIR(mode):
        return "a folder reached through a link (links to folders are not followed)"
    return "not a regular file"


def _entry(path: Path) -> Path | BadFile:
    """The regular file ``path`` is or links to (resolved), or why it is skipped."""
    shown = str(path)
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            try:
                target = path.resolve(strict=True)
            except RuntimeError:  # Python's "Symlink loop" before 3.13
                return BadFile(shown, "skipped", "a symbolic link that loops back on itself")
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    return BadFile(shown, "skipped", "a symbolic link that loops back on itself")
                if exc.errno == errno.ENOENT:
                    return BadFile(shown, "skipped", "a symbolic link to nothing (its target is missing)")
                return BadFile(shown, "skipped", f"a symbolic link that cannot be followed ({exc.strerror or exc})")
            st = os.stat(target)
        else:
            target = path.resolve()
    except OSError as exc:
        return BadFile(shown, "skipped", f"cannot be examined ({exc.strerror or exc})")
    if not stat.S_ISREG(st.st_mode):
        return BadFile(shown, "skipped", _kind(st.st_mode))
    return target


def scan_checked(folders: list[Path]) -> tuple[list[Path], list[BadFile]]:
    """Regular image files under the folders (recursively, sorted) and named directly, resolved; and each
    image-named entry skipped (FIFO, device, socket, looping or dangling link, unreadable folder) with why."""
    found: list[Path] = []
    skipped: list[BadFile] = []

    def unreadable(exc: OSError) -> None:
        skipped.append(BadFile(str(exc.filename), "skipped", f"a folder that cannot be read ({exc.strerror or exc})"))

    for folder in folders:
        folder = Path(folder).expanduser()
        if folder.is_dir():
            for root, dirs, files in os.walk(folder, onerror=unreadable):
                dirs.sort()
                for name in sorted(files):
                    if is_image_name(name):
                        entry = _entry(Path(root, name))
                        (found if isinstance(entry, Path) else skipped).append(entry)  # type: ignore[arg-type]
            continue
        if not os.path.lexists(folder):
            raise GalleryError(f"{folder} is neither a folder nor a file.", hint="Check the path and try again.")
        entry = _entry(folder)
        (found if isinstance(entry, Path) else skipped).append(entry)  # type: ignore[arg-type]
    return list(dict.fromkeys(found)), skipped


def scan(folders: list[Path]) -> list[Path]:
    """Image files under the folders (recursively, sorted) plus files named directly, resolved (regular files only)."""
    return scan_checked(folders)[0]


def _read_capped(path: Path) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file, opened once (no link, no blocking open), read to the size cap and no further.

    Raises ``BadImage`` for what is not a regular file by now or is over the cap.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BadImage(f"cannot read the file: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadImage(_kind(st.st_mode))
        if st.st_size > MAX_FILE_BYTES:
            raise BadImage(f"the file is {st.st_size / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit")
        try:
            data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise BadImage(f"cannot read the file: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise BadImage(f"the file grew past the {MAX_FILE_BYTES // 2**20} MB limit while it was read")
    return data, st


def split_unencodable(files: list[Path]) -> tuple[list[Path], list[BadFile]]:
    """Files whose name can be stored, and a per-file error for each that cannot (non-UTF-8 bytes on Linux).

    Why: POSIX file names are bytes; Python carries undecodable ones as surrogates, which SQLite (UTF-8)
    cannot store. One such name must not stop the batch: it is reported and the others go on.
    """
    ok: list[Path] = []
    bad: list[BadFile] = []
    for path in files:
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")
            bad.append(BadFile(shown, "failed", "the file name is not valid UTF-8 and cannot be recorded; "
                                                "rename the file (e.g. with your file manager) and add it again"))
            continue
        ok.append(path)
    return ok, bad


def _read(path: Path, known: tuple[int, int, int, str | None] | None) -> _Prepared:
    """Worker: read, hash and decode one file (no model, no database: those stay on the calling thread)."""
    try:
        st = path.stat()
    except OSError as exc:
        return _Prepared(str(path), 0, 0, status="error", error=f"cannot read the file: {exc.strerror or exc}")
    prep = _Prepared(str(path), st.st_size, st.st_mtime_ns, replaces=known is not None)
    try:
        data, st = _read_capped(path)
        prep.size, prep.mtime_ns = st.st_size, st.st_mtime_ns
        prep.sha256 = sha256_bytes(data)
        if known is not None and known[3] == prep.sha256:
            prep.touch_photo_id = known[0]
            return prep
        prep.image = load_image(data, for_faces=True)  # decoded from the very bytes that were hashed
        prep.height, prep.width = prep.image.shape[:2]
        prep.suspect = integrity_problem(data)
    except BadImage as exc:
        prep.status, prep.error = "error", str(exc).replace("image data", "the file", 1)
    except Exception as exc:  # out of memory, I/O trouble: not a property of the file, so retried next run
        log.exception("unexpected failure reading %s", path)
        prep.failure = f"{type(exc).__name__}: {exc}"
    return prep


def _detect(pipeline: FacePipeline, prep: _Prepared) -> None:
    """Detect and align the faces of a decoded photo, then drop the full image (only crops are kept)."""
    image, prep.image = prep.image, None
    if image is None:
        return
    try:
        prep.boxes = pipeline.detect(image)
        prep.crops = [pipeline.align(image, b) for b in prep.boxes]
    except Exception as exc:  # a model failure: reported, not recorded, retried next run
        log.exception("unexpected failure detecting faces in %s", prep.path)
        prep.failure = f"{type(exc).__name__}: {exc}"
        return
    if not prep.boxes:
        prep.status, prep.error = "no_face", "no face found"
    elif prep.suspect:
        prep.error = SUSPECT_PREFIX + prep.suspect


class _Run:
    """State of one ingest run (kept out of the loop so each step stays short)."""

    def __init__(self, gallery: Gallery, pipeline: FacePipeline | None, total: int, progress: ProgressCallback | None,
                 batch: int) -> None:
        self.gallery, self.pipeline, self.total, self.progress, self.batch = gallery, pipeline, total, progress, batch
        self.report = IngestReport(scanned=total)
        self.done = 0
        self.dirty = False
        self.last_save = time.monotonic()

    def step(self, path: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(ProgressEvent(self.done, self.total, path))

    def record(self, prep: _Prepared, faces: list[FaceRecord]) -> list[int]:
        store = self.gallery.store
        new, old = store.record_photo(PhotoRecord(prep.path, prep.sha256, prep.size, prep.mtime_ns, prep.status,
                                                  prep.error, prep.width, prep.height), faces)
        if old:
            self.gallery.index.remove(old)
            self.dirty = True
        r = self.report
        if prep.status == "ok":
            r.updated += prep.replaces
            r.added += not prep.replaces
            r.faces += len(faces)
        elif prep.status == "no_face":
            r.no_face += 1
        else:
            r.errors += 1
        self.step(prep.path)
        return new

    def flush(self, items: list[_Prepared]) -> None:
        """Embed the crops of several photos in one batch; record each photo in its own transaction."""
        if not items:
            return
        assert self.pipeline is not None
        crops = [c for it in items for c in it.crops]
        embs = self.pipeline.embed(crops, batch_size=self.batch)
        ids: list[int] = []
        offset = 0
        for it in items:
            faces = []
            for i, (box, crop) in enumerate(zip(it.boxes, it.crops, strict=True)):
                blur = blur_score(crop)
                faces.append(FaceRecord(box.bbox, box.kps, box.det_score, face_quality(box, blur), blur, i == 0,
                                        embs[offset + i], encode_jpeg(crop, THUMB_QUALITY)))
            ids += self.record(it, faces)
            offset += len(it.crops)
        self.gallery.index.add(embs, np.asarray(ids, dtype=np.int64))
        self.dirty = True
        items.clear()
        if time.monotonic() - self.last_save > SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        if self.dirty:
            self.gallery.save_index()
            self.dirty = False
        self.last_save = time.monotonic()


def ingest(gallery: Gallery, folders: list[Path], pipeline: FacePipeline | None = None,
           progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
           workers: int | None = None, batch: int | None = None) -> IngestReport:
    """Import image files under ``folders`` into ``gallery``; one :class:`ProgressEvent` per file.

    Args:
        pipeline: a loaded :class:`FacePipeline` (loaded from the installed models when None and needed).
        progress: called once per file (done, total, path).
        cancel: checked between files; raises :class:`engine.errors.Cancelled`, keeping what was recorded.
        workers: reading/hashing/decoding threads (settings.ingest_workers by default).
        batch: faces per ArcFace batch (settings.ingest_batch by default).
    """
    start = time.perf_counter()
    settings = gallery.settings
    workers, batch = workers or settings.ingest_workers, batch or settings.ingest_batch
    found, skipped = scan_checked(folders)
    files, unnamed = split_unencodable(found)
    with gallery.write_lock:
        known = gallery.store.photo_index()
        todo: list[tuple[Path, tuple[int, int, int, str | None] | None]] = []
        unchanged = 0
        for path in files:
            k = known.get(str(path))
            try:
                st = path.stat()
            except OSError:
                st = None
            if k is not None and st is not None and k[1] == st.st_size and k[2] == st.st_mtime_ns:
                unchanged += 1
            else:
                todo.append((path, k))
        if todo and pipeline is None:
            pipeline = load_pipeline(settings=settings)
        run = _Run(gallery, pipeline, len(files), progress, batch)
        run.report.failed += unnamed
        run.report.scanned += len(unnamed) + len(skipped)
        run.report.skipped = len(skipped)
        run.report.unchanged = unchanged
        run.done = unchanged
        if unchanged and progress is not None:
            progress(ProgressEvent(unchanged, len(files), f"{unchanged} unchanged file(s) skipped"))
        if todo:
            assert pipeline is not None
            gallery.set_model_sha256(recognizer_sha256(pipeline))
            gallery.index  # noqa: B018 - load and reconcile before the first add
            try:
                _process(run, pipeline, todo, cancel, workers, batch)
            finally:
                run.save()
    report = run.report
    scanned = {str(p) for p in files}
    report.bad = [BadFile(p, s, r) for p, s, r in gallery.bad_photos() if p in scanned] + skipped
    report.suspect = [BadFile(p, "suspect", r) for p, r in gallery.store.suspect_photos() if p in scanned]
    report.elapsed_s = round(time.perf_counter() - start, 3)
    return report


def _process(run: _Run, pipeline: FacePipeline, todo: list[tuple[Path, Any]], cancel: CancelToken | None,
             workers: int, batch: int) -> None:
    window = 2 * workers + 2  # decoded images waiting for the detector (bounded: they can be large)
    items = iter(todo)
    pending: deque[Future[_Prepared]] = deque()
    waiting: list[_Prepared] = []
    waiting_faces = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        try:
            def top_up() -> None:
                while len(pending) < window and (nxt := next(items, None)) is not None:
                    pending.append(pool.submit(_read, nxt[0], nxt[1]))

            top_up()
            while pending:
                check(cancel)
                prep = pending.popleft().result()
                top_up()
                _detect(pipeline, prep)
                if prep.failure:
                    run.report.failed.append(BadFile(prep.path, "failed", prep.failure))
                    run.step(prep.path)
                elif prep.touch_photo_id is not None:
                    run.gallery.store.touch_photo(prep.touch_photo_id, prep.size, prep.mtime_ns)
                    run.report.unchanged += 1
                    run.step(prep.path)
                elif prep.crops:
                    waiting.append(prep)
                    waiting_faces += len(prep.crops)
                    if waiting_faces >= batch:
                        run.flush(waiting)
                        waiting_faces = 0
                else:
                    run.record(prep, [])
            run.flush(waiting)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
