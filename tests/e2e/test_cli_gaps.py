"""The examiner-facing gaps of a search over TWO galleries, walked through ``sketchface`` only.

Two local galleries each number their faces from 1, so the same face id names two different faces: the
command line must carry (gallery, face) everywhere. One search fuses a sketch and a photo over both and is
recorded in a case; then, as an examiner would: the search's own lines name each face; ``case decide``
takes a gallery name and refuses a bare id both galleries hold; the PDF and HTML reports show both query
images; a stored re-run keeps each candidate's own gallery face; ``case export --out`` takes a fresh temp
folder; on a receiving workstation a re-run names EVERY gallery it needs (name, id, content version),
never "No gallery called '<id>'"; ``gallery info`` and the re-run report print no Python dict.
(The one-gallery walk is ``test_cli_case_record.py``.)
"""

from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from tests.e2e.test_cli_case_record import RAW_DICT, pdf_text_bytes
from tests.e2e.test_headless_case_flow import GUIDE, run, sketch
from tests.examiner_helpers import ensure_profile
from tests.fixtures.photos import small_photo_folder

ROW = re.compile(r"^\s*(\d+)\s+(-?\d\.\d{4})\s+\[(\w+)\] face (\d+)\s+(\S+)$")


def test_two_galleries_recorded_decided_reported_rerun_and_moved(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cases import build_report, candidates, get_search, open_case
    from engine.cases.images import display_copy, png_bytes
    from engine.gallery import open_gallery
    from tests.desktop.test_recorded_faces import pdf_images

    small_photo_folder(tmp_path / "a", 5, seed=5)
    photos_b = small_photo_folder(tmp_path / "b", 5, seed=9)
    for name, sub in (("galA", "a"), ("galB", "b")):
        run(capsys, "gallery", "create", name)
        run(capsys, "gallery", "add", name, str(tmp_path / sub))
    run(capsys, "case", "new", "2026-0042", "--title", "Two galleries", "--examiner", "A. Examiner")
    drawn = sketch(tmp_path / "sketch.png")
    out = run(capsys, "search", "-g", "galA", "-g", "galB", "--sketch", str(drawn), "--face-box", GUIDE,
              "--photo", str(photos_b[0]), "--weights", "1,0.5", "-k", "12", "--case", "2026-0042")
    sid = int(out.split("Recorded as search ", 1)[1].split()[0])

    # The search's own lines say which face of which gallery each row is (what `case decide` needs).
    rows = [m.groups() for line in out.splitlines() if (m := ROW.match(line))]
    assert len(rows) == 12, out
    with open_case("2026-0042") as case:
        stored = candidates(case, sid)
        manifest = get_search(case, sid).manifest
    assert [(r[2], int(r[3])) for r in rows] == [(c.gallery_name, c.face_id) for c in stored]
    shared = sorted({c.face_id for c in stored if c.gallery_name == "galA"}
                    & {c.face_id for c in stored if c.gallery_name == "galB"})
    assert shared, "both galleries number faces from 1: some face id is in both lists"

    # `case decide`: a bare id both galleries hold is refused; the gallery's name (any case) picks one.
    face = shared[0]
    assert main(["case", "decide", "2026-0042", str(sid), str(face), "--decision", "possible"]) == 1
    assert "several galleries" in capsys.readouterr().err
    out = run(capsys, "case", "decide", "2026-0042", str(sid), f"GALB:{face}", "--decision", "possible")
    b_id = next(g["id"] for g in manifest["galleries"] if g["name"] == "galB")
    assert f"face {b_id}:{face}: possible (gallery galB" in out
    not_listed = max(c.face_id for c in stored) + 100
    assert main(["case", "decide", "2026-0042", str(sid), f"galB:{not_listed}", "--decision", "possible"]) == 1
    assert f"Face {not_listed} of gallery {b_id} is not a candidate" in capsys.readouterr().err

    # `case show --search`: headers, both gallery names, file names; no raw dict.
    shown = run(capsys, "case", "show", "2026-0042", "--search", str(sid))
    assert re.search(r"Rank\s+Score\s+Gallery\s+Face\s+Photo file", shown)
    assert "galA" in shown and "galB" in shown and Path(stored[0].photo_path).name in shown
    assert not RAW_DICT.search(shown)

    # Both query images (the sketch and the photo) are in the PDF and the HTML report, as pixels.
    with open_case("2026-0042") as case:
        pdf, page = build_report(case, "pdf"), build_report(case, "html").decode("utf-8")
    drawn_pixels = pdf_images(pdf)
    for query in (drawn, photos_b[0]):
        shown_copy = np.asarray(display_copy(query.read_bytes(), 520))
        assert any(im.shape == shown_copy.shape and np.array_equal(im, shown_copy) for im in drawn_pixels), query
        uri = base64.b64encode(png_bytes(display_copy(query.read_bytes(), 600))).decode("ascii")
        assert uri in page, query
    text = " ".join(pdf_text_bytes(pdf).split())
    for n, kind in ((1, "sketch"), (2, "photo")):
        assert f"Query image {n} of search {sid}: {kind}" in text
        assert f"Query image {n} of search {sid}: {kind}" in page
    assert not RAW_DICT.search(text) and not RAW_DICT.search(page)

    # A stored re-run: each thumbnail is the candidate's OWN gallery face, byte for byte (with the same
    # face id in both galleries, a thumbnail keyed by face id alone fails here).
    out = run(capsys, "case", "rerun", "2026-0042", str(sid))
    assert "identical result list" in out and not RAW_DICT.search(out)
    new_sid = int(out.split("stored as search ", 1)[1].split()[0])
    with open_case("2026-0042") as case:
        again = candidates(case, new_sid)
        assert all(c.thumbnail_path for c in again), "a stored re-run keeps its candidates' faces"
        faces = {(c.gallery_id, c.face_id): case.read_file(str(c.thumbnail_path), c.thumbnail_sha256)
                 for c in again}
    assert len(faces) == 12
    for (gallery_id, face_id), data in faces.items():
        with open_gallery(gallery_id) as g:
            assert g.thumbnail(face_id) == data, (gallery_id, face_id)

    # A re-run after galA grew: the report names what changed, in words; an index change lists only the
    # entries that differ (the re-measured recall), not every parameter twice, and no dict.
    small_photo_folder(tmp_path / "c", 2, seed=13)
    run(capsys, "gallery", "add", "galA", str(tmp_path / "c"))
    out = run(capsys, "case", "rerun", "2026-0042", str(sid), code=3)
    assert "the list changed" in out and "Gallery galA: content_version" in out, out
    assert not RAW_DICT.search(out) and "recall=" not in out and "ef_construction=200" not in out, out

    # `gallery info` prints its index parameters and recall as words, not as a dict.
    info = run(capsys, "gallery", "info", "galA")
    assert "index:" in info and "M=" in info and not RAW_DICT.search(info)

    # `case export --out` takes a fresh temp folder (the archive goes inside it).
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    out = run(capsys, "case", "export", "2026-0042", "--out", str(folder))
    archive = folder / "case_2026-0042.zip"
    assert archive.is_file() and str(archive) in out
    out = run(capsys, "case", "export", "2026-0042", "--out", str(tmp_path / "new_folder"))  # no suffix: a folder
    assert (tmp_path / "new_folder" / "case_2026-0042.zip").is_file(), out
    run(capsys, "case", "export", "2026-0042", "--out", str(tmp_path / "named.zip"))  # a file name: as given
    assert (tmp_path / "named.zip").is_file()

    # A receiving workstation without either gallery: the re-run names both, with id and content version.
    receiving = tmp_path / "receiving_home"
    receiving.mkdir()
    monkeypatch.setenv("SKETCHFACE_HOME", str(receiving))
    ensure_profile("B. Receiver", "B-2002")
    run(capsys, "case", "import", str(archive))
    assert main(["case", "rerun", "2026-0042", str(sid)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    for g in manifest["galleries"]:
        assert f"gallery '{g['name']}' (id {g['id']}, content version {g['content_version']}" in err, err
    assert "No gallery called" not in err and "create one" not in err.lower()
    assert "bring them here" in err
