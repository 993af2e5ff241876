"""Repeat a recorded search from its manifest (``sketchface case rerun``) and say what changed since.

Why: a forensic search must be reproducible. The manifest names the query images by SHA-256 (and a
sketch's face box), the models by SHA-256, the galleries by id and content version, and the index
parameters, filters and k. Re-running with the same inputs gives the same list; when something did
change (a gallery grew, a model was replaced) :func:`engine.manifest.manifest_differences` names it, so the case
record can explain a new list. Manifests are read through :class:`RunManifest`, so records written by
earlier versions (old embedder spellings, no face box) re-run too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import EngineError, GalleryError
from engine.fsutil import sha256_bytes
from engine.gallery import open_gallery
from engine.gallery.exact import HNSW
from engine.manifest import GalleryRef, RunManifest, manifest_differences
from engine.progress import CancelToken
from engine.search.core import Query, Searcher, SearchResult
from engine.search.record import FaceKey, candidate_thumbnails
from engine.servers import open_server_gallery
from engine.types import Match


def _typed(manifest: Mapping[str, Any] | RunManifest) -> RunManifest:
    return manifest if isinstance(manifest, RunManifest) else RunManifest.from_dict(manifest)


def _described(ref: GalleryRef) -> str:
    faces = f", {ref.face_count} faces" if ref.face_count is not None else ""
    return f"'{ref.name or ref.id}' (id {ref.id}, content version {ref.content_version}{faces})"


def _needed_galleries(missing: list[tuple[GalleryRef, GalleryError]]) -> GalleryError:
    """One error naming every gallery of the search that cannot be opened here (name, id, content version,
    where it lived), so the examiner brings them all at once. A gallery that is simply absent is said to be
    absent (the registry's "No gallery called '<id>' ... create one" would send them the wrong way); any
    other reason (a damaged store, a server that refuses) is kept."""
    parts = []
    for ref, exc in missing:
        where = f"on the gallery server of profile '{ref.server}'" if ref.server else "on this workstation"
        absent = exc.message.startswith("No gallery called")
        parts.append(f"gallery {_described(ref)}, not available {where}"
                     + ("" if absent else f" ({exc.message.rstrip('.')})"))
    servers = sorted({ref.server for ref, _ in missing if ref.server})
    hints = []
    local = sum(1 for ref, _ in missing if not ref.server)
    if local:
        it = "that gallery is, or bring it" if local == 1 else "those galleries are, or bring them"
        hints.append(f"Re-run it where {it} here first; an exact repeat needs the same content version.")
    hints += [f"Add the server profile '{name}' (sketchface server add) or re-run it where it is configured."
              for name in servers]
    return GalleryError("This search needs " + "; and ".join(parts) + ".", hint=" ".join(hints))


LocalOpener = Callable[[str], Any]
"""Opens a local gallery by id (the workstation passes its shared objects; default: a new one, closed after)."""
ServerOpener = Callable[[str, str], Any]
"""Opens a server gallery by (profile, gallery id)."""


def _open(ref: GalleryRef, open_local: LocalOpener | None, open_server: ServerOpener) -> tuple[Any, bool]:
    """(the gallery a manifest names, whether this re-run opened it and must close it)."""
    try:
        if ref.server:
            return open_server(ref.server, ref.id), False
        return (open_local(ref.id), False) if open_local is not None else (open_gallery(ref.id), True)
    except EngineError as exc:  # the caller names every gallery it could not open (_needed_galleries)
        raise GalleryError(exc.message) from exc


def _modes(run: RunManifest) -> dict[str, str]:
    """Each local gallery's recorded search mode (``hnsw`` for runs recorded before exact search)."""
    return {g.id: str(g.index.get("mode", HNSW)) for g in run.galleries if not g.server}


def _repeat(run: RunManifest, query_images: list[bytes], searcher: Searcher | None, cancel: CancelToken | None,
            thumbnails: bool, open_local: LocalOpener | None = None,
            open_server: ServerOpener = open_server_gallery) -> tuple[SearchResult, dict[FaceKey, bytes]]:
    """Repeat ``run`` over the galleries it names, each in the mode it ran; with ``thumbnails``, also read
    each candidate's thumbnail before the galleries close."""
    if len(run.query) != len(query_images):
        raise GalleryError(f"The search used {len(run.query)} query image(s); {len(query_images)} were given.")
    queries = []
    for n, (ref, data) in enumerate(zip(run.query, query_images, strict=True), start=1):
        if sha256_bytes(data) != ref.sha256:
            raise GalleryError(f"Query image {n} is not the one the search used (SHA-256 differs).",
                               hint="Use the query images stored with the case.")
        queries.append(Query(ref.kind, data, ref.weight, face_box=ref.face_box))
    opened: list[tuple[Any, bool]] = []
    try:
        missing: list[tuple[GalleryRef, GalleryError]] = []
        for gref in run.galleries:  # try every gallery, so one error names all that are missing
            try:
                opened.append(_open(gref, open_local, open_server))
            except GalleryError as exc:
                missing.append((gref, exc))
        if missing:
            raise _needed_galleries(missing)
        ef = run.index.get("ef")
        result = (searcher or Searcher()).search(
            queries, [g for g, _ in opened], k=run.k, filters=list(run.filters),
            group_by_subject=run.group_by_subject, ef=int(ef) if ef else None, cancel=cancel, mode=_modes(run))
        thumbs = candidate_thumbnails(result.matches, list(result.galleries)) if thumbnails else {}
    finally:
        for g, mine in opened:
            if mine:
                g.close()
    return result, thumbs


def rerun_manifest(manifest: Mapping[str, Any] | RunManifest, query_images: list[bytes], *,
                   searcher: Searcher | None = None, strict: bool = False, cancel: CancelToken | None = None,
                   open_local: LocalOpener | None = None) -> tuple[dict[str, Any], list[Match]]:
    """Repeat the search a manifest describes; returns the new manifest (JSON form) and the new ranked list.

    Args:
        manifest: a manifest produced by :func:`engine.search.search` (typed, or as stored).
        query_images: the query images' bytes, in the manifest's order (checked against their SHA-256).
        searcher: a loaded :class:`Searcher` to reuse (models load otherwise).
        strict: raise :class:`GalleryError` when models, galleries or index parameters changed since.
    """
    run = _typed(manifest)
    result, _ = _repeat(run, query_images, searcher, cancel, False, open_local)
    if strict and (changes := manifest_differences(run, result.run)):
        raise GalleryError("The search cannot be repeated exactly: " + "; ".join(changes) + ".")
    return result.manifest, result.matches


def rerun_for_case(manifest: Mapping[str, Any] | RunManifest, query_images: list[bytes], *,
                   searcher: Searcher | None = None, cancel: CancelToken | None = None,
                   open_local: LocalOpener | None = None) -> tuple[dict[str, Any], list[Match], dict[FaceKey, bytes]]:
    """The case's re-runner (``engine.cases.Rerunner``): the new manifest and list, plus each candidate's
    thumbnail keyed by (gallery id, face id), so a stored re-run shows the faces it found, as the
    original does."""
    result, thumbs = _repeat(_typed(manifest), query_images, searcher, cancel, True, open_local)
    return result.manifest, result.matches, thumbs
