"""Attacks on a gallery's index by someone who can write the data folder but does not hold the workstation key.

The store is as writable as the index file, so the attacker rewrites ``meta.index_sha256`` to match
the file they crafted. Searches run in a fresh process: a crash shows as a negative return code.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from engine.errors import IndexCorrupt
from engine.gallery import create_gallery, open_gallery
from engine.gallery.index import HNSW_HEADER, HnswIndex
from tests.fixtures.photos import small_photo_folder

REPO = Path(__file__).resolve().parents[2]

_SEARCH = textwrap.dedent("""
    import json, sys
    from engine.gallery import open_gallery
    from engine.search import Query, Searcher
    g = open_gallery("g")
    result = Searcher().search([Query.from_path(sys.argv[1], "photo")], [g], k=3, mode="hnsw")
    print(json.dumps([m.photo_path for m in result.matches]))
""")

_LOAD_RAW = textwrap.dedent("""
    import sys
    from engine.gallery.index import HnswIndex
    try:
        HnswIndex.load(sys.argv[1], 512, expected_sha256=sys.argv[2])
    except Exception as exc:
        print(type(exc).__name__, exc)
        sys.exit(3)
""")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONFAULTHANDLER": "1"})


def _search(photo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _SEARCH, str(photo)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONFAULTHANDLER": "1"})


def _rehash(gallery_dir: Path, index_file: Path) -> None:
    """What the attacker does after editing the file: record its new SHA-256 in the store."""
    digest = hashlib.sha256(index_file.read_bytes()).hexdigest()
    with sqlite3.connect(gallery_dir / "gallery.sqlite") as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'index_sha256'", (digest,))


def _gallery(tmp_path: Path, n: int = 8) -> tuple[list[Path], Path, Path, int]:
    photos = small_photo_folder(tmp_path / "photos", n, seed=3)
    with create_gallery("g") as g:
        g.add([tmp_path / "photos"])
        return photos, g.dir, g.index_path, g.store.face_count()


def _crash_header(index: Path) -> None:
    """Entry point and top level far past the graph: hnswlib reads out of bounds at the first search."""
    data = bytearray(index.read_bytes())
    data[48:56] = b"\xff\xff\xff\x7f\xff\xff\xff\x7f"
    index.write_bytes(bytes(data))


def test_a_crafted_index_with_its_digest_rewritten_never_crashes_a_search(installed_models: Path,
                                                                          tmp_path: Path) -> None:
    photos, gdir, index, faces = _gallery(tmp_path)
    _crash_header(index)
    _rehash(gdir, index)

    verify = _cli("gallery", "verify", "g")
    assert verify.returncode == 1 and "signature" in verify.stdout, verify.stdout + verify.stderr
    done = _search(photos[0])
    assert done.returncode == 0, f"search ended with {done.returncode}: {done.stderr[-2000:]}"
    assert json.loads(done.stdout.splitlines()[-1])[0] == str(photos[0].resolve())
    with open_gallery("g") as g:  # rebuilt from the stored embeddings, signed again
        assert g.index_file_problem() is None and len(g.index) == faces and g.verify().ok


def test_a_rewritten_vectors_section_with_its_digest_rewritten_is_caught(installed_models: Path,
                                                                         tmp_path: Path) -> None:
    photos, gdir, index, _ = _gallery(tmp_path)
    data = bytearray(index.read_bytes())
    (_, _, count, size_data, label_off, data_off, *_rest) = HNSW_HEADER.unpack_from(data, 0)
    rng = np.random.default_rng(1)
    for i in range(count):  # every vector replaced by another unit vector: the graph stays well-formed
        v = rng.normal(size=512).astype("<f4")
        start = HNSW_HEADER.size + i * size_data + data_off
        data[start:start + 2048] = (v / np.linalg.norm(v)).astype("<f4").tobytes()
    index.write_bytes(bytes(data))
    _rehash(gdir, index)

    verify = _cli("gallery", "verify", "g")
    assert verify.returncode == 1 and "signature" in verify.stdout, verify.stdout + verify.stderr
    done = _search(photos[0])
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])[0] == str(photos[0].resolve())


def test_a_signed_index_whose_vectors_differ_from_the_store_is_rebuilt_on_load(installed_models: Path,
                                                                               tmp_path: Path) -> None:
    """The layer behind the signature: even a file this workstation signed is compared with the store."""
    _, _, _, faces = _gallery(tmp_path)
    with open_gallery("g") as g:
        ids = g.store.face_ids()
        wrong = np.random.default_rng(2).normal(size=(len(ids), 512)).astype(np.float32)
        bad = HnswIndex(512, capacity=len(ids) + 10)
        bad.add(wrong / np.linalg.norm(wrong, axis=1, keepdims=True), ids)
        g._save(bad)  # a faulty writer: signed, well-formed, wrong
    with open_gallery("g") as g:
        assert g.index_file_problem() is None  # signature and digest hold ...
        assert len(g.index) == faces and g.verify().ok  # ... and the sample check rebuilt it anyway


def test_an_index_without_a_signature_is_rebuilt_not_loaded(installed_models: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _, gdir, _, faces = _gallery(tmp_path)
    with sqlite3.connect(gdir / "gallery.sqlite") as con:
        con.execute("DELETE FROM meta WHERE key = 'index_signature'")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unsigned index file was handed to hnswlib")

    with monkeypatch.context() as m:
        m.setattr(HnswIndex, "load", classmethod(never))
        with open_gallery("g") as g:
            assert "not signed" in (g.index_file_problem() or "")
            assert len(g.index) == faces
    with open_gallery("g") as g:
        assert g.index_file_problem() is None and g.verify().ok


@pytest.mark.parametrize("field,value", [
    ("entry", 10**6), ("maxlevel", 40), ("count", 10**6), ("neighbour", 10**6), ("M", 1000), ("size_data", 4)])
def test_the_layout_check_refuses_what_would_crash_even_with_a_matching_digest(
        tmp_path: Path, field: str, value: int) -> None:
    """Defence in depth: the loader itself refuses a crafted layout, whatever the digest says."""
    x = np.random.default_rng(0).normal(size=(200, 512)).astype(np.float32)
    ix = HnswIndex(512, M=8, capacity=300)
    ix.add(x / np.linalg.norm(x, axis=1, keepdims=True), np.arange(200))
    path = tmp_path / "i.hnsw"
    ix.save(path)
    data = bytearray(path.read_bytes())
    fields = list(HNSW_HEADER.unpack_from(data, 0))
    if field == "neighbour":
        struct.pack_into("<II", data, HNSW_HEADER.size + 5 * fields[3], 1, value)  # element 5: one bad link
    else:
        fields[{"entry": 7, "maxlevel": 6, "count": 2, "M": 10, "size_data": 3}[field]] = value
        HNSW_HEADER.pack_into(data, 0, *fields)
    path.write_bytes(bytes(data))
    digest = hashlib.sha256(bytes(data)).hexdigest()
    done = subprocess.run([sys.executable, "-c", _LOAD_RAW, str(path), digest], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3 and "IndexFileRefused" in done.stdout, (done.returncode, done.stdout, done.stderr)


def test_a_digest_mismatch_is_refused_before_hnswlib_reads(tmp_path: Path) -> None:
    ix = HnswIndex(512, capacity=10)
    path = tmp_path / "i.hnsw"
    ix.save(path)
    with pytest.raises(IndexCorrupt, match="SHA-256"):
        HnswIndex.load(path, 512, expected_sha256="0" * 64)


def test_the_compact_index_layout_check_refuses_a_crafted_graph(tmp_path: Path) -> None:
    from engine.gallery.compact import UsearchI8Index, check_usearch_file
    from engine.gallery.indexfile import IndexFileRefused

    x = np.random.default_rng(0).normal(size=(300, 512)).astype(np.float32)
    ix = UsearchI8Index(512, M=8)
    ix.add(x / np.linalg.norm(x, axis=1, keepdims=True), np.arange(300))
    path = tmp_path / "c.usearch"
    ix.save(path)
    good = path.read_bytes()
    check_usearch_file(good, 512)
    graph = 8 + 300 * 512 + 64
    for offset, value in ((graph + 32, 10**6), (graph + 24, 70), (8 + 300 * 512 + 64 + 40 + 600 + 14, 10**6)):
        bad = bytearray(good)
        struct.pack_into("<I" if offset > graph + 40 else "<Q", bad, offset, value)  # entry, top level, a neighbour
        with pytest.raises(IndexFileRefused):
            check_usearch_file(bytes(bad), 512)
        bad_path = tmp_path / "bad.usearch"
        bad_path.write_bytes(bytes(bad))
        with pytest.raises(IndexCorrupt):
            UsearchI8Index.load(bad_path, 512, expected_sha256=hashlib.sha256(bytes(bad)).hexdigest())
