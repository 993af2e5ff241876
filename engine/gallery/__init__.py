"""Galleries: folders of photos turned into searchable faces (SQLite store + HNSW index + ingest).

Public API used by search, the CLI and the desktop app::

    g = create_gallery("Mugshots 2024")          # or open_gallery("Mugshots 2024" | id)
    report = g.add([folder], progress=cb, cancel=token)
    g.import_metadata("people.csv"); g.remove([path]); g.rebuild(); g.verify()
"""

from engine.gallery.filters import Filter, parse_filter, parse_filters
from engine.gallery.gallery import Gallery, GalleryInfo, RemoveReport, VerifyReport
from engine.gallery.index import HnswIndex, RWLock, VectorIndex
from engine.gallery.ingest import BadFile, IngestReport
from engine.gallery.metadata import MetadataError, MetadataReport
from engine.gallery.registry import create_gallery, delete_gallery, list_galleries, open_gallery
from engine.gallery.store import FaceInfo, GalleryStore

__all__ = [
    "BadFile", "FaceInfo", "Filter", "Gallery", "GalleryInfo", "GalleryStore", "HnswIndex", "IngestReport",
    "MetadataError", "MetadataReport", "RWLock", "RemoveReport", "VectorIndex", "VerifyReport", "create_gallery",
    "delete_gallery", "list_galleries", "open_gallery", "parse_filter", "parse_filters",
]
