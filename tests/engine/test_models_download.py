"""Model download against a local HTTP server on 127.0.0.1: progress, resume, checksums, zip members, cancel."""

from __future__ import annotations

import io
import socket
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine import paths
from engine.errors import Cancelled, ConfigError, ModelInvalid, ModelMissing
from engine.fsutil import sha256_bytes
from engine.models import MODELS, ModelFile, ModelSpec, digests, installed, model_dir
from engine.models.fetch import DownloadFailed, download, mirror_url
from engine.progress import CancelToken, ProgressEvent
from tests.engine.test_models_onnx import detector_bytes, recognizer_bytes
from tests.fixtures.http import serving

BLOB = bytes(range(256)) * 2048  # 512 KiB: several 64 KiB chunks
BUFFALO_PATH = "/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.cuts: dict[str, int] = {}  # path -> how many more responses to cut halfway
        self.honour_range = True
        self.log: list[tuple[str, str | None]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = int(rng.split("=")[1].split("-")[0]) if rng and srv.honour_range else 0
        if start >= len(data) and rng and srv.honour_range:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cuts.get(self.path, 0) > 0:  # promise the whole body, send half, hang up
            srv.cuts[self.path] -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving(_Server()) as srv:
        yield srv


def _blob_spec(monkeypatch: pytest.MonkeyPatch, server: _Server, sha256: str | None,
               model_id: str = "test.blob") -> str:
    server.files["/files/weights.bin"] = BLOB
    spec = ModelSpec(id=model_id, title="Test blob", task="vae", licence="test", source="test",
                     files=(ModelFile("weights.bin", sha256=sha256, url=f"{server.base}/files/weights.bin"),))
    monkeypatch.setitem(MODELS, model_id, spec)
    return model_id


def _buffalo_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("det_10g.onnx", detector_bytes())
        zf.writestr("w600k_r50.onnx", recognizer_bytes())
        zf.writestr("1k3d68.onnx", b"unused")
    return buf.getvalue()


def test_download_with_checksum_and_progress(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = _blob_spec(monkeypatch, server, sha256_bytes(BLOB))
    events: list[ProgressEvent] = []
    assert download(model_id, progress=events.append) == ["weights.bin"]
    target = model_dir(model_id) / "weights.bin"
    assert target.read_bytes() == BLOB
    assert not target.with_name("weights.bin.part").exists()
    assert events[-1].done == events[-1].total == len(BLOB)
    assert all(a.done <= b.done for a, b in zip(events, events[1:], strict=False))
    assert digests.read_lock()[f"{model_id}/weights.bin"]["source"].startswith("download:http://127.0.0.1")
    assert download(model_id) == []  # already installed and matching: no request
    assert len(server.log) == 1


def test_interrupted_transfer_resumes_with_range_in_the_same_call(server: _Server,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = _blob_spec(monkeypatch, server, sha256_bytes(BLOB))
    server.cuts["/files/weights.bin"] = 1
    download(model_id, retries=2)
    assert (model_dir(model_id) / "weights.bin").read_bytes() == BLOB
    assert server.log[0][1] is None
    assert server.log[1][1] == f"bytes={len(BLOB) // 2}-"


def test_interrupted_download_resumes_from_part_file_on_next_run(server: _Server,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = _blob_spec(monkeypatch, server, None)  # no digest known: pinned on first download
    server.cuts["/files/weights.bin"] = 1
    with pytest.raises(DownloadFailed, match="resumes"):
        download(model_id, retries=0)
    part = model_dir(model_id) / "weights.bin.part"
    assert part.stat().st_size == len(BLOB) // 2
    assert not (model_dir(model_id) / "weights.bin").exists()
    download(model_id)
    assert server.log[-1][1] == f"bytes={len(BLOB) // 2}-"
    assert (model_dir(model_id) / "weights.bin").read_bytes() == BLOB
    assert digests.pinned_digest(model_id, "weights.bin") == sha256_bytes(BLOB)


def test_server_ignoring_range_restarts_cleanly(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = _blob_spec(monkeypatch, server, sha256_bytes(BLOB))
    server.honour_range = False
    server.cuts["/files/weights.bin"] = 1
    download(model_id, retries=1)
    assert (model_dir(model_id) / "weights.bin").read_bytes() == BLOB


def test_complete_part_file_is_not_downloaded_again(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = _blob_spec(monkeypatch, server, sha256_bytes(BLOB))
    part = model_dir(model_id) / "weights.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(BLOB)
    download(model_id)
    assert server.log == [("/files/weights.bin", f"bytes={len(BLOB)}-")]  # answered 416: already whole
    assert (model_dir(model_id) / "weights.bin").read_bytes() == BLOB


def test_checksum_mismatch_is_refused_and_not_kept(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = _blob_spec(monkeypatch, server, "f" * 64)
    with pytest.raises(ModelInvalid) as err:
        download(model_id)
    assert "f" * 64 in str(err.value) and sha256_bytes(BLOB) in str(err.value)
    assert list(model_dir(model_id).iterdir()) == []  # neither the final file nor a .part to resume


def test_pinned_digest_mismatch_on_redownload_is_refused(server: _Server,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = _blob_spec(monkeypatch, server, None)
    download(model_id)
    (model_dir(model_id) / "weights.bin").unlink()
    server.files["/files/weights.bin"] = BLOB[::-1]  # the source now serves different bytes
    with pytest.raises(ModelInvalid, match="lock"):
        download(model_id)
    assert not installed(model_id)


def test_zip_member_urls_through_a_mirror_download_the_zip_once(server: _Server,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server.files[BUFFALO_PATH] = _buffalo_zip()
    assert download("buffalo_l.det_10g", base_url=server.base) == ["det_10g.onnx"]
    monkeypatch.setenv("SKETCHFACE_MODEL_MIRROR", server.base)
    assert download("buffalo_l.w600k_r50") == ["w600k_r50.onnx"]
    assert [path for path, _ in server.log] == [BUFFALO_PATH]
    assert (model_dir("buffalo_l.det_10g") / "det_10g.onnx").read_bytes() == detector_bytes()
    assert (model_dir("buffalo_l.w600k_r50") / "w600k_r50.onnx").read_bytes() == recognizer_bytes()


def test_zip_member_with_wrong_signature_is_refused_and_zip_dropped(server: _Server) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("buffalo_l/w600k_r50.onnx", recognizer_bytes(dim=128))
    server.files[BUFFALO_PATH] = buf.getvalue()
    with pytest.raises(ModelInvalid, match="N×512"):
        download("buffalo_l.w600k_r50", base_url=server.base)
    assert not installed("buffalo_l.w600k_r50")
    assert list((paths.cache_dir() / "downloads").iterdir()) == []


def test_cancel_during_download_leaves_no_final_file(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = _blob_spec(monkeypatch, server, sha256_bytes(BLOB))
    token = CancelToken()
    seen: list[int] = []

    def on_progress(event: ProgressEvent) -> None:
        seen.append(event.done)
        token.cancel()

    with pytest.raises(Cancelled):
        download(model_id, progress=on_progress, cancel=token)
    assert not (model_dir(model_id) / "weights.bin").exists()
    part = model_dir(model_id) / "weights.bin.part"
    assert 0 < part.stat().st_size < len(BLOB)  # kept for a later resume
    assert not (paths.models_dir() / ".staging").exists()


def test_http_error_is_reported(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = _blob_spec(monkeypatch, server, None)
    del server.files["/files/weights.bin"]
    with pytest.raises(DownloadFailed, match="HTTP 404"):
        download(model_id)


def test_model_without_url_must_be_imported_and_nothing_is_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(ModelMissing, match="must be imported") as err:
        download("sketch_encoder")  # trained locally: no download source exists
    assert "sketchface models import" in err.value.hint


def test_mirror_url_replaces_scheme_and_host() -> None:
    url = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip#det_10g.onnx"
    assert mirror_url(url, "https://models.local:8080/mirror/") == (
        "https://models.local:8080/mirror/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip#det_10g.onnx")
    assert mirror_url(url, None) == url
    with pytest.raises(ConfigError):
        mirror_url(url, "models.local")
    with pytest.raises(ConfigError, match="https"):  # plain http to another machine can be altered on the way
        mirror_url(url, "http://models.local:8080/mirror/")


def test_cli_download_through_mirror(server: _Server, capsys: pytest.CaptureFixture[str]) -> None:
    from engine import cli

    server.files[BUFFALO_PATH] = _buffalo_zip()
    assert cli.main(["models", "download", "buffalo_l.det_10g", "--mirror", server.base]) == 0
    out = capsys.readouterr()
    assert "Downloaded buffalo_l.det_10g" in out.out and "non-commercial" in out.err
    assert installed("buffalo_l.det_10g")
