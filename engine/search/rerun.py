"""Repeat a recorded search from its manifest (``sketchface case rerun``) and say what changed since.

Why: a forensic search must be reproducible. The manifest names the query images by SHA-256 (and a
sketch's face box), the models by SHA-256, the galleries by id and content version, and the index
parameters, filters and k. Re-running with the same inputs gives the same list; when something did
change (a gallery grew, a model was replaced) :func:`manifest_differences` names it, so the case
record can explain a new list. Manifests are read through :class:`RunManifest`, so records written by
earlier versions (old embedder spellings, no face box) re-run too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.environment import describe_software
from engine.errors import EngineError, GalleryError
from engine.fsutil import sha256_bytes
from engine.gallery import Gallery, open_gallery
from engine.progress import CancelToken
from engine.search.core import Query, Searcher, SearchResult
from engine.search.manifest import GalleryRef, RunManifest, plain
from engine.search.record import FaceKey, ThumbnailSource, candidate_thumbnails
from engine.types import Match


def _typed(manifest: Mapping[str, Any] | RunManifest) -> RunManifest:
    return manifest if isinstance(manifest, RunManifest) else RunManifest.from_dict(manifest)


def manifest_differences(old: Mapping[str, Any] | RunManifest, new: Mapping[str, Any] | RunManifest) -> list[str]:
    """Human-readable differences between two manifests that can change the result list."""
    a, b = _typed(old), _typed(new)
    out: list[str] = []
    if a.arcface_sha256 != b.arcface_sha256:
        out.append(f"ArcFace file changed ({a.arcface_sha256[:12]}… -> {b.arcface_sha256[:12]}…)")
    if a.embedder != b.embedder:
        out.append(f"sketch embedder changed ({plain(a.embedder.to_dict())} -> {plain(b.embedder.to_dict())})")
    before = {g.id: g for g in a.galleries}
    for g in b.galleries:
        prev = before.get(g.id)
        if prev and prev.content_version != g.content_version:
            out.append(f"gallery '{g.name}' changed (content version {prev.content_version} -> "
                       f"{g.content_version}, faces {prev.face_count} -> {g.face_count})")
    if a.index != b.index:
        out.append(f"index parameters changed ({plain(a.index)} -> {plain(b.index)})")
    was = {(m.get("id"), m.get("file")): m.get("sha256") for m in a.models}
    for m in b.models:  # the detector (and other model files) besides the ArcFace file reported above
        key, sha = (m.get("id"), m.get("file")), m.get("sha256")
        if key in was and was[key] != sha and sha != b.arcface_sha256:
            out.append(f"model file {key[0]}/{key[1]} changed ({str(was[key])[:12]}… -> {str(sha)[:12]}…)")
    if a.engine_version != b.engine_version:
        out.append(f"engine version changed ({a.engine_version} -> {b.engine_version})")
    if a.software and a.software.get("lock_digest") != b.software.get("lock_digest"):
        # A note, not an error: the list may still be identical; the report says what else ran it.
        out.append(f"software environment differs ({describe_software(a.software)} -> "
                   f"{describe_software(b.software)})")
    return out


def _needed_gallery(ref: GalleryRef, exc: GalleryError) -> GalleryError:
    """Say which gallery a re-run needs (name, id, content version, where it lived), not just a missing id."""
    where = f"on the gallery server of profile '{ref.server}'" if ref.server else "on this workstation"
    faces = f", {ref.face_count} faces" if ref.face_count is not None else ""
    return GalleryError(
        f"This search needs gallery '{ref.name or ref.id}' (id {ref.id}, content version {ref.content_version}"
        f"{faces}), which is not available {where}: {exc.message}",
        hint=("Re-run it where that gallery is, or bring the gallery here first; an exact repeat needs the same "
              "content version." if not ref.server else
              f"Add the server profile '{ref.server}' (sketchface server add) or re-run it where it is configured."))


def _open_local(ref: GalleryRef) -> Gallery:
    try:
        return open_gallery(ref.id)
    except GalleryError as exc:
        raise _needed_gallery(ref, exc) from exc


def _repeat(run: RunManifest, query_images: list[bytes], searcher: Searcher | None, cancel: CancelToken | None,
            thumbnails: bool) -> tuple[SearchResult, dict[FaceKey, bytes]]:
    """Repeat ``run``; with ``thumbnails``, also read each candidate's thumbnail before the galleries close."""
    if len(run.query) != len(query_images):
        raise GalleryError(f"The search used {len(run.query)} query image(s); {len(query_images)} were given.")
    queries = []
    for n, (ref, data) in enumerate(zip(run.query, query_images, strict=True), start=1):
        if sha256_bytes(data) != ref.sha256:
            raise GalleryError(f"Query image {n} is not the one the search used (SHA-256 differs).",
                               hint="Use the query images stored with the case.")
        queries.append(Query(ref.kind, data, ref.weight, face_box=ref.face_box))
    galleries: list[Gallery] = []
    try:
        for gref in run.galleries:
            if not gref.server:
                galleries.append(_open_local(gref))
        if any(g.server for g in run.galleries):  # a search that included shared galleries on a server
            from engine.gallery.pg.mixed import open_recorded_server_gallery, run_mixed_search

            remote = []
            for gref in run.galleries:
                if gref.server:
                    try:
                        remote.append(open_recorded_server_gallery(gref))
                    except EngineError as exc:
                        raise _needed_gallery(gref, GalleryError(exc.message)) from exc
            ef = run.index.get("ef")
            result = run_mixed_search(searcher or Searcher(), queries, galleries, remote, run.k, list(run.filters),
                                      int(ef) if ef else None, cancel)
            owners: list[ThumbnailSource] = [*galleries, *remote]
        else:
            result = (searcher or Searcher()).search(
                queries, galleries, k=run.k, filters=list(run.filters), group_by_subject=run.group_by_subject,
                ef=int(run.index["ef"]), cancel=cancel)
            owners = list(galleries)
        thumbs = candidate_thumbnails(result.matches, owners) if thumbnails else {}
    finally:
        for g in galleries:
            g.close()
    return result, thumbs


def rerun_manifest(manifest: Mapping[str, Any] | RunManifest, query_images: list[bytes], *,
                   searcher: Searcher | None = None, strict: bool = False,
                   cancel: CancelToken | None = None) -> tuple[dict[str, Any], list[Match]]:
    """Repeat the search a manifest describes; returns the new manifest (JSON form) and the new ranked list.

    Args:
        manifest: a manifest produced by :func:`engine.search.search` (typed, or as stored).
        query_images: the query images' bytes, in the manifest's order (checked against their SHA-256).
        searcher: a loaded :class:`Searcher` to reuse (models load otherwise).
        strict: raise :class:`GalleryError` when models, galleries or index parameters changed since.
    """
    run = _typed(manifest)
    result, _ = _repeat(run, query_images, searcher, cancel, thumbnails=False)
    if strict and (changes := manifest_differences(run, result.run)):
        raise GalleryError("The search cannot be repeated exactly: " + "; ".join(changes) + ".")
    return result.manifest, result.matches


def rerun_for_case(manifest: Mapping[str, Any] | RunManifest, query_images: list[bytes], *,
                   searcher: Searcher | None = None,
                   cancel: CancelToken | None = None) -> tuple[dict[str, Any], list[Match], dict[FaceKey, bytes]]:
    """The case's re-runner (``engine.cases.Rerunner``): the new manifest and list, plus each candidate's
    thumbnail keyed by (gallery id, face id), so a stored re-run shows the faces it found, as the
    original does."""
    result, thumbs = _repeat(_typed(manifest), query_images, searcher, cancel, thumbnails=True)
    return result.manifest, result.matches, thumbs
