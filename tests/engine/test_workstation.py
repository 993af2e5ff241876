"""The workstation (use-case layer), exact search by default, and the one manifest comparison."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import numpy as np
import pytest

from engine import manifest as manifest_mod
from engine.cases import rerun as cases_rerun
from engine.errors import ModelInvalid
from engine.gallery import Gallery, exact
from engine.gallery.exact import ExactScan, choose_mode
from engine.search import Query, manifest_differences
from engine.workstation import Workstation, is_server_key, server_key, split_server_key
from tests.fixtures.photos import small_photo_folder


@pytest.fixture
def workstation(installed_models: Path, tmp_path: Path) -> Workstation:
    for name, seed in (("A", 1), ("B", 2)):
        small_photo_folder(tmp_path / name, 6, seed=seed)
    ws = Workstation()
    for name in ("A", "B"):
        ws.add_photos(ws.create_gallery(name).id, [tmp_path / name])
    return ws


def test_one_gallery_object_per_folder(workstation: Workstation) -> None:
    listed = {g.name: g for g in workstation.galleries()}
    assert workstation.gallery("A") is listed["A"] and workstation.gallery(listed["B"].id) is listed["B"]
    assert workstation.open_any(listed["A"].id) is listed["A"]
    workstation.close()


def test_a_small_gallery_searches_exactly_and_the_manifest_and_result_say_so(workstation: Workstation,
                                                                            tmp_path: Path) -> None:
    query = [Query.from_path(next((tmp_path / "A").iterdir()), "photo")]
    exact_run = workstation.search(query, ["A", "B"], k=8)
    hnsw_run = workstation.search(query, ["A", "B"], k=8, mode="hnsw")
    assert exact_run.result.mode == "exact" and exact_run.manifest["index"]["mode"] == "exact"
    assert {g["index"]["mode"] for g in exact_run.manifest["galleries"]} == {"exact"}
    assert hnsw_run.result.mode == "hnsw"
    # the same faces by the same exact scores: on a small gallery HNSW with exact re-rank finds the same list
    assert [(m.gallery_id, m.face_id) for m in exact_run.matches] == [(m.gallery_id, m.face_id)
                                                                      for m in hnsw_run.matches]
    # every thumbnail is the candidate's own gallery's, keyed by (gallery, face)
    for m in exact_run.matches:
        assert exact_run.thumbnails[(m.gallery_id, m.face_id)] == workstation.gallery(m.gallery_id).thumbnail(
            m.face_id)
    # the re-run repeats each gallery in the mode it ran and finds the same list
    new, matches, _ = workstation.rerunner()(hnsw_run.manifest, [q.data for q in query])
    assert new["index"]["mode"] == "hnsw" and manifest_differences(hnsw_run.manifest, new) == []
    assert [(m.gallery_id, m.face_id) for m in matches] == [(m.gallery_id, m.face_id) for m in hnsw_run.matches]
    workstation.close()


def test_auto_mode_uses_hnsw_beyond_the_measured_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_mode("auto", 1000, "cpu") == "exact"  # a 1000-face scan is far below 150 ms anywhere
    monkeypatch.setattr(exact, "scan_ms", lambda n, device="auto": 10 * exact.EXACT_BUDGET_MS)
    assert choose_mode("auto", 1000, "cpu") == "hnsw"  # control: over the bound, approximate
    assert choose_mode("exact", 10**9, "cpu") == "exact"  # the examiner's choice stands


def test_the_exact_scan_has_recall_one_and_respects_filters() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 512)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    scan = ExactScan(np.arange(1, 5001, dtype=np.int64), x, 0, "cpu")
    for q in x[:20]:
        truth = set((np.argsort(-(x @ q))[:10] + 1).tolist())
        assert {f for f, _ in scan.top(q, 10)} == truth
    allowed = np.arange(1, 5001, 2)
    assert all(f % 2 == 1 for f, _ in scan.top(x[0], 10, allowed))


def test_a_gallery_of_another_arcface_is_refused_by_the_one_check(workstation: Workstation, tmp_path: Path) -> None:
    workstation.gallery("B").store.set_meta("model_sha256", "f" * 64)
    with pytest.raises(ModelInvalid, match="gallery 'B' belongs to ArcFace file ffffffffffff"):
        workstation.search([Query.from_path(next((tmp_path / "A").iterdir()), "photo")], ["A", "B"], k=3)
    workstation.close()


def test_there_is_one_manifest_comparison() -> None:
    assert cases_rerun.compare_manifests is manifest_mod.compare_manifests
    assert "compare_manifests(" in inspect.getsource(manifest_mod.manifest_differences)


def test_server_gallery_is_an_ordinary_search_option_and_keys_round_trip() -> None:
    from engine.cli import search as search_cli

    parser = argparse.ArgumentParser()
    search_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", "--photo", "x.jpg", "--server-gallery", "hq:Shared", "--mode", "exact"])
    assert search_cli.gallery_refs(args) == ["pg:hq:Shared"] and args.mode == "exact"
    assert is_server_key(server_key("hq", "Shared")) and split_server_key("pg:hq:Shared") == ("hq", "Shared")
    assert not is_server_key("0123456789ab")


def test_a_gallery_gives_its_searchable_form(workstation: Workstation) -> None:
    g: Gallery = workstation.gallery("A")
    source = g.searchable("exact")
    assert source.id == g.id and source.mode == "exact" and source.can_group
    ref = source.manifest_ref(g.content_version)
    assert ref.index["mode"] == "exact" and ref.face_count == g.store.face_count()
    workstation.close()


def test_an_exact_search_does_not_load_the_index(workstation: Workstation, tmp_path: Path) -> None:
    workstation.close()
    fresh = Workstation()
    finished = fresh.search([Query.from_path(next((tmp_path / "A").iterdir()), "photo")], ["A"], k=3, mode="exact")
    assert finished.result.mode == "exact" and finished.matches[0].score == pytest.approx(1.0, abs=1e-4)
    assert fresh.gallery("A")._index is None  # the HNSW file is neither read nor held for an exact search
    fresh.search([Query.from_path(next((tmp_path / "A").iterdir()), "photo")], ["A"], k=3, mode="hnsw")
    assert fresh.gallery("A")._index is not None  # control: the HNSW mode loads it
    fresh.close()
