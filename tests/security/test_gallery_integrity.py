"""Attacks on galleries: a corrupted index file, two writer processes, an unencodable file name, a damaged database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine.gallery import create_gallery, open_gallery
from engine.gallery.index import HnswIndex
from tests.fixtures.photos import small_photo_folder

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``sketchface ARGS`` in a fresh process (same SKETCHFACE_HOME as this test)."""
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONFAULTHANDLER": "1"})


_SEARCH = textwrap.dedent("""
    import json, sys
    from engine.gallery import open_gallery
    from engine.search import Query, Searcher
    g = open_gallery("g")
    result = Searcher().search([Query.from_path(sys.argv[1], "photo")], [g], k=3)
    print(json.dumps([m.photo_path for m in result.matches]))
""")


def _corrupt_header(index: Path) -> None:
    """Overwrite hnswlib's entry-point field (bytes 48..56): loading the file as is crashes the process."""
    data = bytearray(index.read_bytes())
    data[48:56] = b"\xff\xff\xff\x7f\xff\xff\xff\x7f"
    index.write_bytes(bytes(data))


def test_flipped_bytes_in_an_index_file_are_caught_and_rebuilt_never_loaded(installed_models: Path,
                                                                             tmp_path: Path) -> None:
    photos = small_photo_folder(tmp_path / "photos", 8, seed=3)
    with create_gallery("g") as g:
        g.add([tmp_path / "photos"])
        index_path, faces = g.index_path, g.store.face_count()
    _corrupt_header(index_path)

    verify = _run("gallery", "verify", "g")
    assert verify.returncode == 1 and "index" in verify.stdout.lower(), verify.stdout + verify.stderr

    done = subprocess.run([sys.executable, "-c", _SEARCH, str(photos[0])], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"search process ended with {done.returncode}: {done.stderr[-2000:]}"
    assert json.loads(done.stdout.splitlines()[-1])[0] == str(photos[0].resolve())
    with open_gallery("g") as g:  # rebuilt from the stored embeddings and saved with its digest
        assert len(g.index) == faces and g.verify().ok
    assert _run("gallery", "verify", "g").returncode == 0


def test_negative_control_an_untouched_index_file_passes_verify(installed_models: Path, tmp_path: Path) -> None:
    small_photo_folder(tmp_path / "photos", 4, seed=5)
    with create_gallery("g") as g:
        g.add([tmp_path / "photos"])
    assert _run("gallery", "verify", "g").returncode == 0


@pytest.mark.slow
def test_two_writer_processes_on_one_gallery_lose_no_face(installed_models: Path, tmp_path: Path) -> None:
    small_photo_folder(tmp_path / "a", 30, seed=11)
    small_photo_folder(tmp_path / "b", 30, seed=12)
    create_gallery("g").close()
    cmd = [sys.executable, "-m", "engine.cli", "gallery", "add", "g"]
    procs = [subprocess.Popen([*cmd, str(tmp_path / name)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with open_gallery("g") as g:
        stored = set(g.store.face_ids().tolist())
        photos = {p for _, p in g.store.photo_paths()}
        saved = HnswIndex.load(g.index_path, 512)  # the file as the last writer left it, not repaired
    assert len(photos) == 60
    assert set(saved.labels().tolist()) == stored, "the index file lost the other writer's faces"


def test_a_second_writer_waits_with_a_message(installed_models: Path, tmp_path: Path) -> None:
    from engine.gallery.gallery import writer_lock_path

    small_photo_folder(tmp_path / "a", 3, seed=13)
    create_gallery("g").close()
    with open_gallery("g") as g:
        lock = writer_lock_path(g.dir)
    from filelock import FileLock

    with FileLock(lock):  # another process is writing
        busy = _run("gallery", "add", "g", str(tmp_path / "a"), "--wait", "1")
    assert busy.returncode == 1
    assert "another process" in busy.stderr and "Traceback" not in busy.stderr
    done = _run("gallery", "add", "g", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="Linux file names are bytes; others are always Unicode")
def test_an_unencodable_file_name_is_a_per_file_error_and_the_batch_goes_on(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    good = small_photo_folder(folder, 3, seed=7)
    bad = os.path.join(os.fsencode(folder), b"witness\xff\xfe.jpg")
    with open(bad, "wb") as f:
        f.write(good[0].read_bytes())
    create_gallery("g").close()
    rc = cli.main(["gallery", "add", "g", str(folder)])
    out = capsys.readouterr().out
    assert rc == 1 and "witness" in out and "UTF-8" in out
    with open_gallery("g") as g:
        assert {p for _, p in g.store.photo_paths()} == {str(p.resolve()) for p in good}
        assert len(g.index) == g.store.face_count() > 0


def test_a_damaged_gallery_database_gives_one_clear_line(installed_models: Path, tmp_path: Path) -> None:
    small_photo_folder(tmp_path / "photos", 3, seed=9)
    with create_gallery("g") as g:
        g.add([tmp_path / "photos"])
        db = g.dir / "gallery.sqlite"
        gallery_id = g.id
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(db.read_bytes())
    page = 4096
    data[page:len(data)] = np.random.default_rng(0).integers(0, 256, len(data) - page, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))
    for args in (["gallery", "info", gallery_id], ["gallery", "add", gallery_id, str(tmp_path / "photos")],
                 ["gallery", "verify", gallery_id]):
        done = _run(*args)
        err = done.stderr.strip()
        assert done.returncode != 0 and "Traceback" not in err, err
        assert "gallery.sqlite" in err and ("backup" in err.lower() or "restore" in err.lower()), err
        assert len(err.splitlines()) == 1, err
