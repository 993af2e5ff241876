"""Attacks on the installed models: tampered files at load, trust labels, oversized bundle members, insecure downloads."""

from __future__ import annotations

import dataclasses
import os
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine import cli, paths
from engine.errors import ConfigError, EngineError
from engine.fsutil import sha256_bytes
from engine.models import MODELS, ModelFile, installed, model_dir
from engine.models.bundle import BadBundle, import_bundle
from tests.engine.test_models_onnx import detector_bytes
from tests.fixtures.http import serving
from tests.fixtures.photos import small_photo_folder

DET, REC = "buffalo_l.det_10g", "buffalo_l.w600k_r50"


@pytest.fixture
def tiny(tiny_models_dir: Path) -> Path:
    """The tiny detector and recognizer, imported as a user would (so they are pinned at first import)."""
    for model_id in (DET, REC):
        import_bundle(tiny_models_dir / model_id)
    return tiny_models_dir


def _flip(path: Path) -> None:
    """Change one weight of the ONNX file (it stays a valid model) and put the timestamps back."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    before = path.stat()
    model = onnx.load(str(path))
    init = max(model.graph.initializer, key=lambda t: len(numpy_helper.to_array(t).ravel()))
    arr = numpy_helper.to_array(init).copy()
    arr.ravel()[0] += np.asarray(0.5, dtype=arr.dtype)
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    path.write_bytes(model.SerializeToString())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _search(tmp_path: Path, name: str) -> dict[str, object]:
    from engine.gallery import create_gallery
    from engine.search import Query, Searcher

    photos = small_photo_folder(tmp_path / name, 3, seed=4)
    g = create_gallery(name)
    searcher = Searcher()
    g.add([tmp_path / name], pipeline=searcher.pipeline)
    result = searcher.search([Query.from_path(photos[0], "photo")], [g], k=2)
    g.close()
    return result.manifest


@pytest.mark.parametrize(("model_id", "file"), [(REC, "w600k_r50.onnx"), (DET, "det_10g.onnx")])
def test_a_tampered_model_file_is_refused_at_load_and_search_refuses(tmp_path: Path, tiny: Path,
                                                                      model_id: str, file: str) -> None:
    _search(tmp_path, "before")  # the untouched models load and search
    _flip(model_dir(model_id) / file)
    from engine.gallery import open_gallery
    from engine.search import Query, Searcher

    photo = next((tmp_path / "before").iterdir())
    with pytest.raises(EngineError) as err:
        Searcher().search([Query.from_path(photo, "photo")], [open_gallery("before")], k=2)
    message = str(err.value)
    assert file in message and "re-import or re-download" in message.lower()
    assert type(err.value).__name__ == "ModelTampered"


def test_negative_control_an_untouched_model_loads_and_the_manifest_names_every_model_file(
        tmp_path: Path, tiny: Path) -> None:
    manifest = _search(tmp_path, "g")
    files = {(m["id"], m["file"]): m for m in manifest["models"]}  # type: ignore[index, attr-defined]
    assert (DET, "det_10g.onnx") in files and (REC, "w600k_r50.onnx") in files
    det = files[(DET, "det_10g.onnx")]
    assert det["sha256"] == sha256_bytes((tiny / DET / "det_10g.onnx").read_bytes())
    assert det["trust"] == "pinned at first import"


def test_models_status_says_pinned_for_tiny_models_and_published_for_a_manifest_digest(
        tiny: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["models", "status"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("buffalo", "sd15"))}
    assert "pinned at first import" in rows[DET] and "pinned at first import" in rows[REC]
    assert "published" not in rows[REC] and " ok" not in rows[REC] and "verified" not in rows[REC]
    # The same file, now with the publisher's digest in the manifest: "published".
    spec = MODELS[DET]
    published = dataclasses.replace(spec, files=(dataclasses.replace(spec.files[0],
                                                                     sha256=sha256_bytes((tiny / DET / "det_10g.onnx").read_bytes())),))
    monkeypatch.setitem(MODELS, DET, published)
    assert cli.main(["models", "status", "--deep"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("buffalo")}
    assert "published" in rows[DET] and "pinned at first import" in rows[REC]


@pytest.mark.real_manifest
def test_real_manifest_entries_carry_published_digests_and_https_urls() -> None:
    published = {(m.id, f.path) for m in MODELS.values() for f in m.files if f.sha256}
    assert (("ip_adapter.faceid_sd15", "ip-adapter-faceid_sd15.bin") in published)
    for m in MODELS.values():
        for f in m.files:
            if f.url:
                assert f.url.startswith("https://"), f.url


def _bomb(path: Path, size: int) -> Path:
    """A zip whose one member inflates to ``size`` bytes of zeros (a few MB on disk)."""
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            zf.open("buffalo_l.det_10g/det_10g.onnx", "w", force_zip64=True) as member:
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return path


def test_a_1_gib_member_in_a_small_bundle_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bundle = _bomb(tmp_path / "models.zip", 1 << 30)
    assert bundle.stat().st_size < 8 * (1 << 20)
    start = time.perf_counter()
    with pytest.raises(BadBundle, match="(?i)compress|larger|size"):
        import_bundle(bundle)
    assert time.perf_counter() - start < 5, "the member must be refused from its header, not after inflating it"
    assert not installed(DET)
    staging = paths.models_dir() / ".staging"
    assert not staging.exists() or not any(staging.rglob("*"))


def test_negative_control_a_normal_zip_bundle_installs(tmp_path: Path) -> None:
    bundle = tmp_path / "ok.zip"
    with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("buffalo_l/det_10g.onnx", detector_bytes())
    assert import_bundle(bundle) == [DET]


def test_a_member_larger_than_the_manifest_size_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = MODELS[DET]
    monkeypatch.setitem(MODELS, DET, dataclasses.replace(
        spec, files=(dataclasses.replace(spec.files[0], size=1000),)))
    bundle = tmp_path / "b.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("buffalo_l/det_10g.onnx", detector_bytes())
    with pytest.raises(BadBundle, match="1000"):
        import_bundle(bundle)


# -- downloads ---------------------------------------------------------------------------------------


class _Redirector(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        self.log: list[str] = []


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _Redirector

    def do_GET(self) -> None:
        self.server.log.append(self.path)
        if self.path.startswith("/moved"):
            port = self.server.server_address[1]
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{port}/files/weights.bin")  # another host name
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"x" * 1000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def redirector() -> Iterator[_Redirector]:
    with serving(_Redirector()) as srv:
        yield srv


def _spec(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    from engine.models import ModelSpec

    spec = ModelSpec(id="test.blob", title="Test blob", task="vae", licence="test", source="test",
                     files=(ModelFile("weights.bin", url=url),))
    monkeypatch.setitem(MODELS, spec.id, spec)
    return spec.id


def test_a_redirect_to_another_host_is_refused(redirector: _Redirector, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.models.fetch import DownloadFailed, download

    port = redirector.server_address[1]
    model_id = _spec(monkeypatch, f"http://127.0.0.1:{port}/moved/weights.bin")
    with pytest.raises(DownloadFailed, match="(?i)redirect"):
        download(model_id, retries=0)
    assert redirector.log == ["/moved/weights.bin"]
    assert not (model_dir(model_id) / "weights.bin").exists()


@pytest.mark.parametrize("where", ["url", "mirror"])
def test_plain_http_to_a_remote_host_is_refused_before_any_connection(monkeypatch: pytest.MonkeyPatch,
                                                                      where: str) -> None:
    from engine.models.fetch import download

    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("network touched")

    monkeypatch.setattr("socket.create_connection", no_network)
    if where == "url":
        model_id = _spec(monkeypatch, "http://models.example.org/weights.bin")
        with pytest.raises(ConfigError, match="https"):
            download(model_id)
    else:
        model_id = _spec(monkeypatch, "https://huggingface.co/x/resolve/abc/weights.bin")
        with pytest.raises(ConfigError, match="https"):
            download(model_id, base_url="http://mirror.agency.example/hf")


@pytest.mark.slow
def test_a_reconstruction_records_the_detector_and_arcface_files_it_used(
        installed_models: Path, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    import numpy as np

    from engine.generate.model_set import ModelLocator
    from engine.generate.reconstruct import Reconstructor
    from engine.generate.types import ReconstructionRequest, RuntimeOptions
    from tests.fixtures import tiny_diffusion

    gen_models = tiny_diffusion.session_models(request, tmp_path_factory)
    emb = np.random.default_rng(3).normal(size=512).astype(np.float32)
    with tiny_diffusion.one_thread():
        rec = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True))
        req = ReconstructionRequest(embedding=emb / np.linalg.norm(emb), prompt="portrait", seeds=(5,), steps=2,
                                    width=32, height=32)
        record = rec.reconstruct(req).candidates[0].provenance
    assert record["models"][DET]["det_10g.onnx"] == sha256_bytes((installed_models / DET / "det_10g.onnx").read_bytes())
    assert REC in record["models"]


def test_a_rerun_names_a_changed_detector_file() -> None:
    from engine.search import manifest_differences

    base: dict[str, Any] = {"query": [{"kind": "photo", "sha256": "a" * 64, "weight": 1.0}], "embedder": {"kind": "arcface",
            "sha256": "r" * 64}, "arcface_sha256": "r" * 64, "galleries": [], "index": {}, "filters": [], "k": 5,
            "group_by_subject": False, "engine_version": "1",
            "models": [{"id": DET, "file": "det_10g.onnx", "sha256": "d" * 64, "trust": "pinned at first import"},
                       {"id": REC, "file": "w600k_r50.onnx", "sha256": "r" * 64, "trust": "pinned at first import"}]}
    assert manifest_differences(base, base) == []  # negative control
    changed = {**base, "models": [{**base["models"][0], "sha256": "e" * 64}, base["models"][1]]}
    (diff,) = manifest_differences(base, changed)
    assert DET in diff and "det_10g.onnx" in diff


def test_a_download_larger_than_the_manifest_states_is_stopped(redirector: _Redirector,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.models.fetch import DownloadFailed, download

    port = redirector.server_address[1]
    model_id = _spec(monkeypatch, f"http://127.0.0.1:{port}/files/weights.bin")  # serves 1000 bytes
    spec = MODELS[model_id]
    monkeypatch.setitem(MODELS, model_id, dataclasses.replace(
        spec, files=(dataclasses.replace(spec.files[0], size=100),)))
    with pytest.raises(DownloadFailed, match="more than the 100"):
        download(model_id, retries=0)
    assert not (model_dir(model_id) / "weights.bin").exists()
    part = model_dir(model_id) / "weights.bin.part"
    assert not part.exists() or part.stat().st_size <= 100
    monkeypatch.setitem(MODELS, model_id, spec)  # negative control: no stated size, within the cap
    assert download(model_id, retries=0) == ["weights.bin"]
