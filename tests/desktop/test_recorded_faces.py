"""Every recorded candidate shows its own face: the case and the PDF hold the thumbnail of the gallery
that returned it, never another gallery's face with the same face id.

Each local gallery numbers its faces from 1, so a search over two galleries returns pairs of
candidates with the same face id. The searches run through the window's real wiring (the examiner
flow, the search controller and its engine-lane op, the case controller), the command line
(``sketchface search … --case``) and re-runs from both; a local gallery beside a server gallery (the
embedded PostgreSQL + pgvector of the engine tests) goes the same three ways.

The case is checked byte for byte: the stored thumbnail file equals ``gallery.thumbnail(face_id)`` of
the candidate's own gallery. The PDF draws a display copy (``engine.cases.images.display_copy``,
scaled to 96 px and stored losslessly by fpdf2), so there the decoded pixels of each image, in the
order the pages draw them, are compared with the display copy of the candidate's own thumbnail.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.cli import main
from sketchface_desktop.workers import JobState
from tests.desktop.conftest import wait_idle, wait_job
from tests.desktop.test_examiner_flow import CASE, build_gallery, draw_face
from tests.desktop.test_server_galleries import hq_profile, no_keyring  # noqa: F401  (fixtures)
from tests.engine import conftest_pg
from tests.fixtures.photos import small_photo_folder

pytestmark = pytest.mark.gui

pg_server = conftest_pg.pg_server  # the engine tests' session server, reused here
pg_database = conftest_pg.pg_database

Thumbnail = Callable[[str, int], bytes | None]


@dataclass
class Tally:
    """Candidates checked per search path, and how many showed another face or none."""

    checked: dict[str, int] = field(default_factory=dict)
    wrong: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)

    def add(self, path: str, *, wrong: bool, missing: bool) -> None:
        self.checked[path] = self.checked.get(path, 0) + 1
        self.wrong[path] = self.wrong.get(path, 0) + int(wrong)
        self.missing[path] = self.missing.get(path, 0) + int(missing)

    def lines(self) -> str:
        return "; ".join(f"{p}: {self.wrong[p]} of {n} wrong, {self.missing[p]} without a thumbnail"
                         for p, n in self.checked.items())

    @property
    def clean(self) -> bool:
        return bool(self.checked) and not any(self.wrong.values()) and not any(self.missing.values())


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == code, f"sketchface {' '.join(argv)} exited {rc}: {err}"
    return out


def searches_by_path(case_ref: str) -> dict[int, str]:
    """Search id -> which path stored it, from the labels the tests give and the re-run links."""
    from engine.cases import list_searches, open_case

    with open_case(case_ref) as case:
        records = list_searches(case)
    named: dict[int, str] = {}
    for s in records:
        if s.rerun_of is not None:
            named[s.id] = f"re-run of the {named.get(s.rerun_of, s.rerun_of)} search"
        else:
            named[s.id] = "command line" if "command line" in s.label else "window"
    return named


def check_case(case_ref: str, thumbnail: Thumbnail, tally: Tally) -> None:
    """Each stored thumbnail must be the candidate's own gallery thumbnail, byte for byte."""
    from engine.cases import candidates, list_searches, open_case

    paths = searches_by_path(case_ref)
    with open_case(case_ref) as case:
        for s in list_searches(case):
            for c in candidates(case, s.id):
                own = thumbnail(c.gallery_id, c.face_id)
                assert own is not None, f"gallery {c.gallery_id} has no thumbnail for face {c.face_id}"
                stored = case.read_file(c.thumbnail_path, c.thumbnail_sha256) if c.thumbnail_path else None
                tally.add(f"case, {paths[s.id]}", wrong=stored is not None and stored != own, missing=stored is None)


def pdf_images(data: bytes) -> list[np.ndarray]:
    """The decoded pixels of every image the PDF draws, in drawing order (page by page, ``Do`` by ``Do``)."""
    from pypdf import PdfReader
    from pypdf.generic import ContentStream

    reader = PdfReader(io.BytesIO(data))
    out = []
    for page in reader.pages:
        for operands, op in ContentStream(page.get_contents(), reader).operations:
            if op == b"Do":
                image = page.images[str(operands[0])].image
                assert image is not None
                out.append(np.asarray(image.convert("RGB")))
    return out


def check_pdf(case_ref: str, thumbnail: Thumbnail, tally: Tally) -> None:
    """The PDF's candidate images, in table order, must be the display copies of each candidate's own thumbnail.

    Images that are the display copy of a stored query image or sketch (the report shows those too) are
    set aside first; what remains is one image per candidate row, drawn in rank order.
    """
    from engine.cases import build_report, candidates, list_searches, list_sketches, open_case, query_images
    from engine.cases.images import display_copy

    paths = searches_by_path(case_ref)
    with open_case(case_ref) as case:
        pdf = build_report(case, "pdf")
        others = [np.asarray(display_copy(case.read_file(v.path, v.sha256), 520)) for v in list_sketches(case)]
        expected: list[tuple[str, np.ndarray]] = []
        for s in list_searches(case):
            others += [np.asarray(display_copy(q, 520)) for q in query_images(case, s.id)]
            for c in candidates(case, s.id):
                own = thumbnail(c.gallery_id, c.face_id)
                assert own is not None
                if c.thumbnail_path:  # the report draws a face only for a row with a stored thumbnail
                    expected.append((paths[s.id], np.asarray(display_copy(own, 96))))
                else:
                    tally.add(f"PDF, {paths[s.id]}", wrong=False, missing=True)
    drawn = [im for im in pdf_images(pdf) if not any(im.shape == o.shape and np.array_equal(im, o) for o in others)]
    for i, (path, want) in enumerate(expected):
        got = drawn[i] if i < len(drawn) else None
        tally.add(f"PDF, {path}", wrong=got is not None and not (got.shape == want.shape and np.array_equal(got, want)),
                  missing=got is None)
    assert len(drawn) <= len(expected), "the PDF draws more candidate images than there are candidates"


def local_thumbnails() -> Thumbnail:
    from engine.gallery import open_gallery

    def read(gallery_id: str, face_id: int) -> bytes | None:
        with open_gallery(gallery_id) as g:
            return g.thumbnail(face_id)

    return read


def _local_infos() -> list[Any]:
    from engine.gallery import list_galleries

    return list_galleries()


def window_sketch_search(qtbot: Any, w: Any, n_galleries: int) -> int:
    """Draw, search every ticked gallery from the window with its defaults, and wait until it is recorded."""
    qtbot.waitUntil(lambda: len(w.navigator.checked_galleries()) == n_galleries, timeout=60_000)
    draw_face(w.sketch.canvas)
    before = len(w.cases.searches)
    w.flow.search_sketch()
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: len(w.cases.searches) == before + 1 and w.flow.shown_search_id is not None
                    and w.results_model.rowCount() > 0, timeout=60_000)
    assert w.errors.shown == []
    return int(w.flow.shown_search_id)


def window_rerun(qtbot: Any, w: Any, search_id: int) -> bool:
    """Re-run a stored search from the window (stored as a linked search); whether the list was identical."""
    dialog = w.dialogs.rerun_search(search_id)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=60_000)
    assert dialog.report.new_search_id is not None
    identical = bool(dialog.report.identical)
    dialog.accept()
    assert w.errors.shown == []
    return identical


def two_local_galleries(qtbot: Any, w: Any, tmp_path: Path) -> tuple[str, str]:
    """galA (6 photos) and galB (8 photos), built in the window; each numbers its faces from 1."""
    small_photo_folder(tmp_path / "galA", 6, seed=11)
    small_photo_folder(tmp_path / "galB", 8, seed=12)
    build_gallery(qtbot, w, tmp_path / "galA", "galA")
    build_gallery(qtbot, w, tmp_path / "galB", "galB")
    from engine.gallery import list_galleries

    ids = {i.name: i.id for i in list_galleries()}
    return ids["galA"], ids["galB"]


def search_three_ways(qtbot: Any, w: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, number: str,
                      n_galleries: int, cli_galleries: list[str]) -> dict[str, bool]:
    """The window's search and re-run, then (the case closed in the window) the command line's search and
    re-run; whether each re-run found the identical list."""
    sid = window_sketch_search(qtbot, w, n_galleries)
    window_identical = window_rerun(qtbot, w, sid)
    sketch = tmp_path / "sketch.png"
    sketch.write_bytes(w.sketch.canvas.to_png_bytes())
    box = w.sketch.canvas.face_box()
    guide = ["--face-box", ",".join(f"{v:g}" for v in box)] if box else []
    wait_job(qtbot, w.hub, w.flow.close_case())
    out = run_cli(capsys, "search", *cli_galleries, "--sketch", str(sketch), *guide, "--case", number)
    cli_sid = int(out.split("Recorded as search ", 1)[1].split()[0])
    rc = main(["case", "rerun", number, str(cli_sid)])
    assert rc in (0, 3), capsys.readouterr().err
    capsys.readouterr()
    return {"window re-run identical": window_identical, "command-line re-run identical": rc == 0}


def test_two_local_galleries_with_the_same_face_ids_record_each_candidates_own_face(
        qtbot: Any, window: Any, installed_models: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    w = window
    shutil.rmtree(installed_models / "sketch_encoder", ignore_errors=True)
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number="2026-0501")))
    a, b = two_local_galleries(qtbot, w, tmp_path)
    verdicts = search_three_ways(qtbot, w, capsys, tmp_path, "2026-0501", 2, ["--gallery", "galA", "--gallery", "galB"])

    from engine.cases import candidates, list_searches, open_case

    with open_case("2026-0501") as case:
        first = candidates(case, list_searches(case)[0].id)
    ids = [(c.gallery_id, c.face_id) for c in first]
    shared = {f for g, f in ids if g == a} & {f for g, f in ids if g == b}
    assert shared, "the test needs candidates of both galleries with the same face id"
    tally = Tally()
    check_case("2026-0501", local_thumbnails(), tally)
    check_pdf("2026-0501", local_thumbnails(), tally)
    print(f"\nrecorded faces, two local galleries: {tally.lines()}; {verdicts}")
    assert tally.clean, tally.lines()
    assert len(tally.checked) == 8, tally.lines()  # case and PDF x window, window re-run, CLI, CLI re-run
    assert all(verdicts.values()), verdicts


def test_negative_control_face_id_keying_is_caught(
        qtbot: Any, window: Any, installed_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With thumbnails keyed by face id alone (as the window once did), the same checks find wrong faces."""
    from engine.search import record

    def by_face_id_alone(matches: Any, galleries: Any) -> dict[tuple[str, int], bytes]:
        owners = {g.id: g for g in galleries}
        matches = list(matches)
        by_face = {m.face_id: t for m in matches if (t := owners[m.gallery_id].thumbnail(m.face_id))}
        return {(m.gallery_id, m.face_id): by_face[m.face_id] for m in matches if m.face_id in by_face}

    monkeypatch.setattr(record, "candidate_thumbnails", by_face_id_alone)
    w = window
    shutil.rmtree(installed_models / "sketch_encoder", ignore_errors=True)
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number="2026-0502")))
    two_local_galleries(qtbot, w, tmp_path)
    window_sketch_search(qtbot, w, 2)
    tally = Tally()
    check_case("2026-0502", local_thumbnails(), tally)
    check_pdf("2026-0502", local_thumbnails(), tally)
    print(f"\nnegative control (face-id keying): {tally.lines()}")
    assert tally.wrong["case, window"] > 0 and tally.wrong["PDF, window"] > 0, tally.lines()
    assert not tally.clean


def test_a_local_and_a_server_gallery_record_each_candidates_own_face(
        qtbot: Any, window: Any, installed_models: Path, tmp_path: Path, hq_profile: str,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    from engine import servers
    from engine.gallery import open_gallery
    from engine.gallery.pg import PgGallery

    w = window
    shutil.rmtree(installed_models / "sketch_encoder", ignore_errors=True)
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number="2026-0503")))
    small_photo_folder(tmp_path / "local", 5, seed=21)
    small_photo_folder(tmp_path / "server", 5, seed=22)
    build_gallery(qtbot, w, tmp_path / "local", "Desk")
    wait_job(qtbot, w.hub, w.gallery.create_gallery("Shared", server=hq_profile))
    wait_idle(qtbot, w.hub)
    shared = w.gallery.info()
    assert shared is not None and shared.id.startswith("pg:hq:")
    job = w.gallery.add_folder(str(tmp_path / "server"))
    wait_idle(qtbot, w.hub, timeout=120_000)
    assert job.state is JobState.DONE, w.errors.shown
    qtbot.waitUntil(lambda: (w.gallery.info(shared.id) or shared).faces >= 5, timeout=60_000)
    verdicts = search_three_ways(qtbot, w, capsys, tmp_path, "2026-0503", 2,
                                 ["--gallery", "Desk", "--server-gallery", "hq:Shared"])

    server_id = shared.id.rsplit(":", 1)[1]
    remote = PgGallery(servers.conninfo(servers.get_profile(hq_profile)), server_id, hq_profile)

    def read(gallery_id: str, face_id: int) -> bytes | None:
        if gallery_id in (server_id, shared.id):  # the engine's id, or the window's key for it
            return remote.thumbnail(face_id)
        with open_gallery(gallery_id) as g:
            return g.thumbnail(face_id)

    from engine.cases import candidates, list_searches, open_case

    with open_case("2026-0503") as case:
        recorded = {c.gallery_id for s in list_searches(case) for c in candidates(case, s.id)}
    tally = Tally()
    check_case("2026-0503", read, tally)
    check_pdf("2026-0503", read, tally)
    print(f"\nrecorded faces, local + server gallery: {tally.lines()}; {verdicts}; gallery ids {sorted(recorded)}")
    assert tally.clean, tally.lines()
    local_id = next(i.id for i in _local_infos() if i.name == "Desk")
    assert recorded == {local_id, server_id}, "every path records the engine's gallery ids, and both galleries"
    assert len(tally.checked) == 8, tally.lines()
    assert all(verdicts.values()), verdicts
