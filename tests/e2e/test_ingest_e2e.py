"""End to end on 200+ photos: every good photo indexed, every bad one listed with its reason, a SIGKILL
mid-import resumes with exactly one record per photo, and a photo finds itself first (cosine ~ 1)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.faces import FacePipeline
from engine.gallery import create_gallery, open_gallery
from engine.search import Query, Searcher
from tests.fixtures.photos import PhotoSet, session_photo_set

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def photo_set(tmp_path_factory: pytest.TempPathFactory) -> PhotoSet:
    return session_photo_set(tmp_path_factory)


def read_only(db: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5))


def statuses(db: Path) -> dict[str, tuple[str, str]]:
    with read_only(db) as c:
        return {p: (s, e or "") for p, s, e in c.execute("SELECT path, status, error FROM photos")}


def check_ground_truth(found: dict[str, tuple[str, str]], ps: PhotoSet) -> None:
    assert set(found) == {str(p) for p in ps.all_images}  # README.txt is not an image name: never scanned
    for p in ps.good:
        assert found[str(p)][0] == "ok", (p, found[str(p)])
    for p in ps.no_face:
        assert found[str(p)] == ("no_face", "no face found")
    for p, word in ps.broken.items():
        status, reason = found[str(p)]
        assert status == "error" and word in reason, (p, reason)


def test_a_folder_of_200_photos_and_broken_files(photo_set: PhotoSet, installed_models: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert len(photo_set.good) >= 200
    g = create_gallery("big")
    assert main(["gallery", "add", g.id, str(photo_set.root)]) == 0
    out = capsys.readouterr().out
    listed = out.split("Not indexed (5):")[1]
    for p, word in photo_set.broken.items():
        line = next(line for line in listed.splitlines() if line.strip().startswith(str(p)))
        assert word in line
    assert f"{photo_set.no_face[0]}: no face found" in listed
    check_ground_truth(statuses(g.store.path), photo_set)
    assert g.verify(sample=1000).ok
    # A photo of the gallery, searched through insightface's own model loading, finds itself first.
    searcher = Searcher(FacePipeline.from_models("cpu"))
    rng = np.random.default_rng(3)
    for i in rng.choice(len(photo_set.good), size=6, replace=False):
        photo = photo_set.good[int(i)]
        top = searcher.search([Query.from_path(photo, "photo")], [g], k=3).matches[0]
        assert top.photo_path == str(photo) and top.score == pytest.approx(1.0, abs=1e-4)


def test_sigkill_mid_import_then_rerun_gives_exactly_one_record_per_photo(photo_set: PhotoSet,
                                                                           installed_models: Path,
                                                                           tmp_path: Path) -> None:
    with create_gallery("killed") as g:
        gid, db = g.id, g.store.path
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "engine.cli", "gallery", "add", gid, str(photo_set.root)]
    log = tmp_path / "first_run.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
    recorded, deadline = 0, time.monotonic() + 300
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            with read_only(db) as c:
                recorded = c.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
            if recorded >= 40:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"exit {proc.returncode}: {log.read_text()[-2000:]}"
    total = len(photo_set.all_images)
    with open_gallery(gid) as g:
        partial = g.store.counts()["photos"]
        assert 40 <= partial < total, "the import finished before it could be killed"
        assert g.store.integrity_problems() == []  # no half-recorded photo
    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{partial} unchanged" in rerun.stdout  # recorded before the kill: not processed again
    with read_only(db) as c:
        paths = [r[0] for r in c.execute("SELECT path FROM photos")]
        faces = c.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM faces").fetchone()
    assert len(paths) == len(set(paths)) == total
    assert faces[0] == faces[1]
    check_ground_truth(statuses(db), photo_set)
    verify = subprocess.run([sys.executable, "-m", "engine.cli", "gallery", "verify", gid, "--sample", "1000"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
