"""Shared galleries on PostgreSQL + pgvector: the server backend behind the same gallery and index interface.

    install_schema(admin_url); create_unit(admin_url, "homicide"); create_examiner(admin_url, "alice", pw, ["homicide"])
    g = PgGallery.create(alice_url, "Bookings 2024", unit="homicide")
    g.push([UploadPhoto(...)]); hits, version = g.search(q, k=10, filters=["sex=F"])
"""

from engine.gallery.pg.admin import create_examiner, create_unit, index_matches_table, install_schema
from engine.gallery.pg.gallery import PgGallery, PushReport, UploadFace, UploadPhoto, search_many

__all__ = ["PgGallery", "PushReport", "UploadFace", "UploadPhoto", "create_examiner", "create_unit",
           "index_matches_table", "install_schema", "search_many"]
