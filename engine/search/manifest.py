"""The run manifest, as search names it: the type and its comparison live in :mod:`engine.manifest`,
below both search and cases, so neither package imports the other for it."""

from engine.manifest import (
    ARCFACE,
    ARCFACE_BASELINE,
    EMBEDDER_KINDS,
    FUSION,
    QUERY_KINDS,
    REQUIRED_KEYS,
    SKETCH_ENCODER,
    EmbedderRef,
    GalleryRef,
    ManifestInvalid,
    QueryRef,
    RunManifest,
    compare_manifests,
    embedder_kind,
    manifest_differences,
    plain,
)

__all__ = ["ARCFACE", "ARCFACE_BASELINE", "EMBEDDER_KINDS", "FUSION", "QUERY_KINDS", "REQUIRED_KEYS",
           "SKETCH_ENCODER", "EmbedderRef", "GalleryRef", "ManifestInvalid", "QueryRef", "RunManifest",
           "compare_manifests", "embedder_kind", "manifest_differences", "plain"]
