"""Search galleries by photo or sketch: fusion, exact re-rank, filters, grouping, reproducible manifests.

Public API::

    result = search([Query.from_path(p, "sketch")], ["Mugshots"], k=50, filters=["sex=M"])
    result.matches        # list[engine.types.Match], best first
    result.manifest       # JSON-serialisable run record (stored by cases)
    manifest, matches = rerun_manifest(result.manifest, [query_bytes])
"""

from engine.search.core import PREFILTER_FRACTION, PREFILTER_MAX, Query, Searcher, SearchResult, fuse, search
from engine.search.embedders import ArcFaceBaselineEmbedder, SketchEmbedder, load_embedder
from engine.search.rerun import manifest_differences, rerun_manifest

__all__ = [
    "PREFILTER_FRACTION", "PREFILTER_MAX", "ArcFaceBaselineEmbedder", "Query", "SearchResult", "Searcher",
    "SketchEmbedder", "fuse", "load_embedder", "manifest_differences", "rerun_manifest", "search",
]
