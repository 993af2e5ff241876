"""The typed run manifest: one schema for search, cases and re-run; old records still read; one error family."""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import pytest

import engine.errors as errors
from engine.cases import add_search, create_case, rerun_search
from engine.errors import CaseError, EngineError, InvalidRequest
from engine.search import EmbedderRef, ManifestInvalid, RunManifest
from engine.search.manifest import REQUIRED_KEYS
from tests.engine.test_cases_support import FakeSearch, face_png


def stored_by_an_earlier_version(image: bytes) -> dict[str, Any]:
    """A manifest as an earlier version wrote it: the sketch embedder's old spelling, no face box, no models."""
    return {
        "query": [{"kind": "sketch", "sha256": hashlib.sha256(image).hexdigest(), "weight": 1.0}],
        "embedder": {"kind": "trained", "sha256": "e" * 64},
        "arcface_sha256": "a" * 64,
        "galleries": [{"id": "g1", "name": "Mugshots", "content_version": 3, "face_count": 40}],
        "index": {"M": 16, "ef_construction": 200, "ef": 200},
        "filters": ["sex=M"],
        "k": 10,
        "group_by_subject": False,
        "engine_version": "0.1.0",
    }


def test_old_spellings_are_read_into_the_one_vocabulary() -> None:
    old = stored_by_an_earlier_version(b"sketch")
    run = RunManifest.from_dict(old)
    assert run.embedder == EmbedderRef("sketch_encoder", "e" * 64) and not run.baseline
    assert run.query[0].face_box is None  # cropped to its ink, as before the box was recorded
    assert RunManifest.from_dict({**old, "embedder": {"kind": "arcface-baseline", "sha256": "a" * 64}}).baseline
    again = RunManifest.from_dict(run.to_dict())
    assert again == run and again.to_dict()["embedder"]["kind"] == "sketch_encoder"
    assert set(run.to_dict()) >= set(REQUIRED_KEYS)
    with pytest.raises(ManifestInvalid, match="Unknown embedder kind"):
        RunManifest.from_dict({**old, "embedder": {"kind": "mystery"}})


def test_malformed_manifests_name_every_problem() -> None:
    old = stored_by_an_earlier_version(b"sketch")
    with pytest.raises(ManifestInvalid, match="lacks index, k"):
        RunManifest.from_dict({k: v for k, v in old.items() if k not in ("index", "k")})
    bad = {**old, "query": [{"kind": "drawing", "sha256": "x"}], "galleries": [{"name": "no id"}],
           "embedder": "sketch"}
    with pytest.raises(ManifestInvalid) as err:
        RunManifest.from_dict(bad)
    for part in ("query[0]", "galleries", "embedder"):
        assert part in str(err.value)
    with pytest.raises(ManifestInvalid, match="face box"):
        RunManifest.from_dict({**old, "query": [{**old["query"][0], "face_box": [5, 5, 1, 1]}]})


def test_cases_store_an_old_record_and_re_run_it_without_a_spurious_embedder_change() -> None:
    fs = FakeSearch()
    image = face_png(11)
    manifest, matches = fs.search([image], k=5)
    old = {**manifest, "embedder": {"kind": "trained", "sha256": fs.embedder_sha}}
    with create_case("2026-0300", "old record") as case:
        rec = add_search(case, old, matches, [image], user="alice")
        report = rerun_search(case, rec.id, fs, user="alice")  # the re-run writes "sketch_encoder"
        assert report.identical and report.manifest_identical, report.changes
        with pytest.raises(CaseError, match="malformed"):
            add_search(case, {**manifest, "query": "one sketch"}, matches, [image])


def test_every_engine_error_has_a_title_and_a_hint() -> None:
    family = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, EngineError)]
    assert len(family) >= 10
    titles = {c.title for c in family}
    assert len(titles) == len(family)  # each kind of error reads differently in a dialog
    for cls in family:
        err = cls() if cls is errors.Cancelled else cls("message")
        assert err.title and err.hint == "" and str(err) == err.message
    err = InvalidRequest("Image size must be positive multiples of 8.", hint="Use 512.")
    assert isinstance(err, ValueError) and str(err).endswith("Use 512.")


def test_generation_refuses_bad_input_with_an_engine_error() -> None:
    from engine.generate.imaging import check_size

    with pytest.raises(InvalidRequest, match="multiples of 8") as err:
        check_size(500, 512)
    assert err.value.title == "Invalid settings"


def test_generation_raises_nothing_but_engine_errors_on_purpose() -> None:
    """The window shows anything outside the EngineError family as "a bug": generation must not raise one."""
    import re
    from pathlib import Path

    import engine.generate

    folder = Path(engine.generate.__file__).parent
    bare = re.compile(r"raise (ValueError|TypeError|RuntimeError|KeyError|Exception)\(")
    offenders = [f"{p.name}:{n}" for p in sorted(folder.glob("*.py"))
                 for n, line in enumerate(p.read_text("utf-8").splitlines(), 1) if bare.search(line)]
    assert offenders == []
    assert bare.search('        raise ValueError("x")')  # the scan itself finds a bare raise


def test_a_real_search_stored_by_an_earlier_version_re_runs_identical(installed_models: Any, tmp_path: Any) -> None:
    """No face box, no model list and the old embedder spelling: the re-run reports no change at all."""
    from engine.faces import FacePipeline
    from engine.gallery import create_gallery
    from engine.search import Query, Searcher, rerun_manifest
    from tests.fixtures.photos import small_photo_folder

    pipeline = FacePipeline.from_models("cpu")
    small_photo_folder(tmp_path / "p", 5, seed=4)
    g = create_gallery("Old")
    g.add([tmp_path / "p"], pipeline=pipeline)
    searcher = Searcher(pipeline)
    sketch = (tmp_path / "p").glob("*.jpg").__next__().read_bytes()
    result = searcher.search([Query("sketch", sketch)], [g], k=3)
    old = result.manifest
    assert old["query"][0]["face_box"] is None and old["models"]  # what this version writes
    old["query"] = [{k: v for k, v in q.items() if k != "face_box"} for q in old["query"]]
    old.pop("models")
    old["embedder"] = {**old["embedder"], "kind": "trained"}
    with create_case("2026-0301", "old real record") as case:
        rec = add_search(case, old, result.matches, [sketch], user="alice")
        report = rerun_search(case, rec.id, lambda m, imgs: rerun_manifest(m, imgs, searcher=searcher),
                              user="alice")
        assert report.identical and report.manifest_identical, report.changes
        changed = {**old, "query": [{**old["query"][0], "face_box": [0, 0, 50, 50]}]}
        rec2 = add_search(case, changed, result.matches, [sketch], user="alice")  # negative control
        report2 = rerun_search(case, rec2.id, lambda m, imgs: rerun_manifest(m, imgs, searcher=searcher),
                               store=False)
        assert report2.manifest_identical and not report2.identical  # the re-run crops with the recorded box
