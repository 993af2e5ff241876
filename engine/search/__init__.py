"""Search galleries by photo or sketch: fusion, exact re-rank, filters, grouping, reproducible manifests.

Public API::

    result = search([Query.from_path(p, "sketch", face_box=guide)], ["Mugshots"], k=50, filters=["sex=M"])
    result.matches        # list[engine.types.Match], best first
    result.run            # RunManifest: the typed run record
    result.manifest       # its JSON form (stored by cases)
    manifest, matches = rerun_manifest(result.manifest, [query_bytes])
    finished = finish_search(result, queries)   # with each candidate's own thumbnail, keyed by (gallery, face)
    # recording it in a case is a use case: engine.workstation (Workstation.record)
    manifest, matches, thumbnails = rerun_for_case(stored_manifest, images)  # what ``case rerun`` stores
"""

from engine.search.core import PREFILTER_FRACTION, PREFILTER_MAX, Query, Searcher, SearchResult, fuse, search
from engine.search.embedders import ArcFaceBaselineEmbedder, SketchEmbedder, embed_sketch, load_embedder
from engine.search.manifest import EmbedderRef, GalleryRef, ManifestInvalid, QueryRef, RunManifest
from engine.search.record import FinishedSearch, finish_search
from engine.search.rerun import manifest_differences, rerun_for_case, rerun_manifest

__all__ = [
    "PREFILTER_FRACTION", "PREFILTER_MAX", "ArcFaceBaselineEmbedder", "EmbedderRef", "GalleryRef",
    "FinishedSearch", "ManifestInvalid", "Query", "QueryRef", "RunManifest", "SearchResult", "Searcher",
    "SketchEmbedder", "embed_sketch", "finish_search", "fuse", "load_embedder", "manifest_differences",
    "rerun_for_case", "rerun_manifest", "search",
]
