"""Opening a gallery clears debris of crashed index saves, never a save still in progress."""

from __future__ import annotations

import os
import time

from engine.gallery.gallery import INDEX_FILE, STALE_TMP_AGE_S
from engine.gallery.registry import create_gallery, open_gallery


def test_only_old_temp_index_files_are_removed_on_open() -> None:
    g = create_gallery("tmpcheck")
    fresh = g.dir / f".{INDEX_FILE}.abc123.tmp"
    old = g.dir / f".{INDEX_FILE}.def456.tmp"
    fresh.write_bytes(b"being written by another Gallery object")
    old.write_bytes(b"left by a crash")
    past = time.time() - STALE_TMP_AGE_S - 60
    os.utime(old, (past, past))
    g.close()
    again = open_gallery("tmpcheck")
    try:
        assert fresh.exists(), "a save in progress elsewhere must not lose its file"
        assert not old.exists(), "crash debris is cleaned up"
    finally:
        again.close()
