"""Replicate backend through httpx.MockTransport: opt-in, upload warning, success, model error, timeout, cancel."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from engine.errors import Cancelled, ConfigError
from engine.generate.provenance import PROVENANCE_KEY, png_bytes
from engine.generate.replicate_backend import ReplicateBackend, ReplicateConfig, UploadNotice
from engine.generate.types import BackendDisabled
from engine.generate.variations import EDITS, run_variations
from engine.progress import CancelToken

FILE_URL = "https://api.replicate.com/v1/files/f1/download"
OUT_URL = "https://replicate.delivery/xyz/out.png"


@pytest.fixture(autouse=True)
def no_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a real connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)


def png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="PNG")
    return buf.getvalue()


def prediction(pid: str, status: str, output: Any = None, error: str | None = None) -> dict[str, Any]:
    return {"id": pid, "model": "acme/editor", "version": "v1", "status": status, "input": {}, "output": output,
            "logs": "", "error": error, "metrics": {}, "created_at": "2026-01-01T00:00:00Z", "started_at": None,
            "completed_at": None, "urls": {"get": f"https://api.replicate.com/v1/predictions/{pid}"}}


class FakeReplicate:
    """A stand-in for api.replicate.com; ``plan`` maps an instruction to the statuses its prediction goes through."""

    def __init__(self, plan: dict[str, list[str]]) -> None:
        self.plan = plan
        self.log: list[str] = []
        self.uploads: list[bytes] = []
        self.inputs: list[dict[str, Any]] = []
        self.polls: dict[str, list[str]] = {}
        self.headers: list[str] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        path, method = req.url.path, req.method
        self.log.append(f"{method} {req.url.host}{path}")
        self.headers.append(req.headers.get("authorization", ""))
        if method == "POST" and path == "/v1/files":
            self.uploads.append(req.read())
            return httpx.Response(201, json={
                "id": "f1", "name": "face.png", "content_type": "image/png", "size": 1, "etag": "e",
                "checksums": {}, "metadata": {}, "created_at": "2026-01-01T00:00:00Z", "expires_at": None,
                "urls": {"get": FILE_URL}})
        if method == "DELETE" and path == "/v1/files/f1":
            return httpx.Response(204)
        if method == "POST" and path == "/v1/models/acme/editor/predictions":
            body = json.loads(req.read())
            self.inputs.append(body["input"])
            pid = f"p{len(self.inputs)}"
            statuses = list(self.plan[body["input"]["prompt"]])
            if statuses[0] == "reject":
                return httpx.Response(422, json={"title": "Invalid input", "detail": "prompt too long", "status": 422})
            self.polls[pid] = statuses
            return httpx.Response(201, json=prediction(pid, "starting"))
        if method == "GET" and path.startswith("/v1/predictions/"):
            pid = path.rsplit("/", 1)[1]
            status = self.polls[pid].pop(0) if len(self.polls[pid]) > 1 else self.polls[pid][0]
            return httpx.Response(200, json=prediction(
                pid, status, output=[OUT_URL] if status == "succeeded" else None,
                error="NSFW content detected in the output" if status == "failed" else None))
        if method == "POST" and path.endswith("/cancel"):
            pid = path.split("/")[-2]
            self.polls[pid] = ["canceled"]
            return httpx.Response(200, json=prediction(pid, "canceled"))
        if method == "GET" and req.url.host == "replicate.delivery":
            return httpx.Response(200, content=png((10, 200, 30)))
        return httpx.Response(404, json={"detail": f"unexpected {method} {path}"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def backend(fake: FakeReplicate, confirm: Callable[[UploadNotice], bool] | None = None, clock: Clock | None = None,
            **cfg: Any) -> ReplicateBackend:
    clock = clock or Clock()
    return ReplicateBackend(enabled=True, token="r8_test", confirm_upload=confirm or (lambda n: True),
                            config=ReplicateConfig(model="acme/editor", poll_interval_s=1.0, **cfg),
                            transport=httpx.MockTransport(fake), sleep=clock.sleep, clock=clock)


def face_with_provenance() -> Image.Image:
    data = png_bytes(Image.new("RGB", (24, 24), (120, 100, 90)), {"synthetic": True, "case": "secret-case-id"})
    return Image.open(io.BytesIO(data))


def test_upload_warning_comes_first_and_each_image_is_uploaded_once() -> None:
    ok = ["processing", "succeeded"]
    fake = FakeReplicate({EDITS["add_glasses"].instruction: ok, EDITS["older"].instruction: ok})
    notices: list[UploadNotice] = []

    def confirm(notice: UploadNotice) -> bool:
        notices.append(notice)
        fake.log.append("CONFIRM")
        return True

    report = run_variations(face_with_provenance(), [EDITS["add_glasses"], EDITS["older"]], backend(fake, confirm),
                            seed=5)
    assert fake.log[0] == "CONFIRM" and fake.log[1] == "POST api.replicate.com/v1/files"
    assert len(notices) == 1 and notices[0].edits == 2 and "leaves this computer" in notices[0].message
    assert len(fake.uploads) == 1 and b"\x89PNG" in fake.uploads[0]
    assert PROVENANCE_KEY.encode() not in fake.uploads[0] and b"secret-case-id" not in fake.uploads[0]
    assert fake.inputs[0] == {"prompt": EDITS["add_glasses"].instruction, "input_image": FILE_URL,
                              "output_format": "png", "seed": 5}
    assert fake.inputs[1]["seed"] == 6
    assert report.remote and report.backend == "replicate" and not report.failed
    out = np.asarray(report.results[0].image)
    assert tuple(out[0, 0]) == (10, 200, 30)  # the downloaded result (band at the bottom only)
    assert report.results[0].provenance["parameters"]["remote"] is True
    assert report.results[0].provenance["parameters"]["model"] == "acme/editor"
    assert fake.log[-1] == "DELETE api.replicate.com/v1/files/f1"  # the upload is removed afterwards
    sent = list(zip(fake.log[1:], fake.headers, strict=True))
    assert all(h == "Bearer r8_test" for line, h in sent if "api.replicate.com" in line)
    assert [h for line, h in sent if "replicate.delivery" in line] == ["", ""]  # no token to the CDN


def test_model_error_fails_only_that_edit() -> None:
    fake = FakeReplicate({EDITS["bald"].instruction: ["processing", "failed"],
                          EDITS["older"].instruction: ["succeeded"],
                          EDITS["incognito"].instruction: ["reject"]})
    report = run_variations(face_with_provenance(), [EDITS["bald"], EDITS["incognito"], EDITS["older"]],
                            backend(fake), seed=0)
    assert [r.ok for r in report.results] == [False, False, True]
    assert "NSFW content detected" in (report.results[0].error or "")
    assert "refused" in (report.results[1].error or "") and "prompt too long" in (report.results[1].error or "")


def test_timeout_cancels_the_prediction_and_fails_that_edit() -> None:
    fake = FakeReplicate({EDITS["older"].instruction: ["processing"]})
    clock = Clock()
    report = run_variations(face_with_provenance(), [EDITS["older"]], backend(fake, clock=clock, timeout_s=5.0))
    assert "within 5 s" in (report.results[0].error or "")
    assert "POST api.replicate.com/v1/predictions/p1/cancel" in fake.log
    assert 5.0 <= clock.now <= 6.0


def test_cancel_during_polling_cancels_remotely_and_cleans_up() -> None:
    fake = FakeReplicate({EDITS["older"].instruction: ["processing"]})
    token = CancelToken()
    clock = Clock()
    b = backend(fake, clock=clock)
    b._sleep = lambda s: (clock.sleep(s), token.cancel())  # the user presses Cancel while we wait
    with pytest.raises(Cancelled):
        run_variations(face_with_provenance(), [EDITS["older"], EDITS["bald"]], b, cancel=token)
    assert "POST api.replicate.com/v1/predictions/p1/cancel" in fake.log
    assert fake.log[-1] == "DELETE api.replicate.com/v1/files/f1"
    assert len(fake.inputs) == 1


def test_declined_warning_sends_nothing() -> None:
    fake = FakeReplicate({})
    with pytest.raises(Cancelled, match="declined"):
        run_variations(face_with_provenance(), [EDITS["older"]], backend(fake, lambda n: False))
    assert fake.log == []


def test_switched_off_backend_refuses_without_touching_the_network() -> None:
    fake = FakeReplicate({})
    with pytest.raises(BackendDisabled, match="switched off"):
        ReplicateBackend(enabled=False, token="r8_x", confirm_upload=lambda n: True,
                         transport=httpx.MockTransport(fake))
    assert fake.log == []


def test_token_comes_from_the_environment_or_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_keyring(name: str, *a: Any, **k: Any) -> Any:
        if name == "keyring":
            raise ImportError("no keyring")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_keyring)
    with pytest.raises(ConfigError, match="REPLICATE_API_TOKEN"):
        ReplicateBackend(enabled=True, confirm_upload=lambda n: True)
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env")
    fake = FakeReplicate({EDITS["older"].instruction: ["succeeded"]})
    b = ReplicateBackend(enabled=True, confirm_upload=lambda n: True, transport=httpx.MockTransport(fake),
                         config=ReplicateConfig(model="acme/editor"), sleep=lambda s: None)
    run_variations(face_with_provenance(), [EDITS["older"]], b)
    assert "Bearer r8_env" in fake.headers
