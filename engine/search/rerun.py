"""Repeat a recorded search from its manifest (``sketchface case rerun``) and say what changed since.

Why: a forensic search must be reproducible. The manifest names the query images by SHA-256, the
models by SHA-256, the galleries by id and content version, and the index parameters, filters and k.
Re-running with the same inputs gives the same list; when something did change (a gallery grew, a
model was replaced) :func:`manifest_differences` names it, so the case record can explain a new list.
"""

from __future__ import annotations

from typing import Any

from engine.errors import GalleryError
from engine.fsutil import sha256_bytes
from engine.gallery import Gallery, open_gallery
from engine.progress import CancelToken
from engine.search.core import Query, Searcher
from engine.types import Match

_REQUIRED = ("query", "embedder", "arcface_sha256", "galleries", "index", "filters", "k", "group_by_subject")


def manifest_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences between two manifests that can change the result list."""
    out: list[str] = []
    if old.get("arcface_sha256") != new.get("arcface_sha256"):
        out.append(f"ArcFace file changed ({str(old.get('arcface_sha256'))[:12]}… -> "
                   f"{str(new.get('arcface_sha256'))[:12]}…)")
    if old.get("embedder") != new.get("embedder"):
        out.append(f"sketch embedder changed ({old.get('embedder')} -> {new.get('embedder')})")
    before = {g["id"]: g for g in old.get("galleries", [])}
    for g in new.get("galleries", []):
        prev = before.get(g["id"])
        if prev and prev.get("content_version") != g.get("content_version"):
            out.append(f"gallery '{g['name']}' changed (content version {prev.get('content_version')} -> "
                       f"{g.get('content_version')}, faces {prev.get('face_count')} -> {g.get('face_count')})")
    if old.get("index") != new.get("index"):
        out.append(f"index parameters changed ({old.get('index')} -> {new.get('index')})")
    if old.get("engine_version") != new.get("engine_version"):
        out.append(f"engine version changed ({old.get('engine_version')} -> {new.get('engine_version')})")
    return out


def rerun_manifest(manifest: dict[str, Any], query_images: list[bytes], *, searcher: Searcher | None = None,
                   strict: bool = False, cancel: CancelToken | None = None) -> tuple[dict[str, Any], list[Match]]:
    """Repeat the search a manifest describes; returns the new manifest and the new ranked list.

    Args:
        manifest: a manifest produced by :func:`engine.search.search`.
        query_images: the query images' bytes, in the manifest's order (checked against their SHA-256).
        searcher: a loaded :class:`Searcher` to reuse (models load otherwise).
        strict: raise :class:`GalleryError` when models, galleries or index parameters changed since.
    """
    missing = [key for key in _REQUIRED if key not in manifest]
    if missing:
        raise GalleryError(f"The search record lacks {', '.join(missing)}; it cannot be re-run.")
    entries = manifest["query"]
    if len(entries) != len(query_images):
        raise GalleryError(f"The search used {len(entries)} query image(s); {len(query_images)} were given.")
    queries = []
    for n, (entry, data) in enumerate(zip(entries, query_images, strict=True), start=1):
        if sha256_bytes(data) != entry["sha256"]:
            raise GalleryError(f"Query image {n} is not the one the search used (SHA-256 differs).",
                               hint="Use the query images stored with the case.")
        queries.append(Query(entry["kind"], data, float(entry.get("weight", 1.0))))
    galleries: list[Gallery] = []
    try:
        for g in manifest["galleries"]:
            galleries.append(open_gallery(g["id"]))
        result = (searcher or Searcher()).search(
            queries, galleries, k=int(manifest["k"]), filters=list(manifest["filters"]),
            group_by_subject=bool(manifest["group_by_subject"]), ef=int(manifest["index"]["ef"]), cancel=cancel)
    finally:
        for g in galleries:
            g.close()
    if strict and (changes := manifest_differences(manifest, result.manifest)):
        raise GalleryError("The search cannot be repeated exactly: " + "; ".join(changes) + ".")
    return result.manifest, result.matches
