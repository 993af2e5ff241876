"""Replicate as an opt-in variations backend: nothing leaves the machine unless it is switched on.

Why so guarded: the face being varied may be a real person's photo from a case. The backend cannot
be built without ``enabled=True`` (the user's setting), asks ``confirm_upload`` before every distinct
image is uploaded (the front-end shows the warning on screen; declining cancels), uploads each image
once per batch and deletes it from Replicate afterwards, and bounds every edit with a deadline and the
cancel token (``predictions.create`` + polling + ``cancel``, since ``replicate.run`` has no deadline).
The token comes from ``REPLICATE_API_TOKEN`` or the OS keyring, never from a file in the project.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from engine.errors import Cancelled, ConfigError
from engine.fsutil import sha256_bytes
from engine.generate.types import BackendDisabled, EditSpec, RemoteError
from engine.progress import CancelToken, ProgressCallback, ProgressEvent, check

log = logging.getLogger(__name__)

TOKEN_ENV = "REPLICATE_API_TOKEN"
KEYRING_SERVICE = "SketchFace"
KEYRING_USER = "replicate"
TERMINAL = ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class ReplicateConfig:
    """Which Replicate model edits, and how it is called.

    Attributes:
        model: ``owner/name`` of an instruction image editor.
        image_input, prompt_input, seed_input: the model's input names (seed_input None: not sent).
        extra_input: further fixed inputs.
        timeout_s: deadline per edit, from prediction creation to its output; then it is cancelled.
        poll_interval_s: seconds between status checks (also the cancel latency).
        delete_uploads: delete uploaded images from Replicate when the batch ends.
        base_url: API address (None: Replicate's default).
    """

    model: str = "black-forest-labs/flux-kontext-pro"
    image_input: str = "input_image"
    prompt_input: str = "prompt"
    seed_input: str | None = "seed"
    extra_input: Mapping[str, Any] = field(default_factory=lambda: {"output_format": "png"})
    timeout_s: float = 180.0
    poll_interval_s: float = 1.0
    delete_uploads: bool = True
    base_url: str | None = None


@dataclass(frozen=True)
class UploadNotice:
    """What is about to leave the machine; the front-end shows ``message`` and asks to proceed."""

    service: str
    model: str
    image_sha256: str
    size_bytes: int
    edits: int

    @property
    def message(self) -> str:
        return (f"The face image ({self.size_bytes // 1024} KB, SHA-256 {self.image_sha256[:12]}…) will be uploaded "
                f"to {self.service} and processed by the model {self.model} for {self.edits} edit(s). "
                "It leaves this computer and is subject to the service's terms; it is deleted from the "
                "service when the edits finish.")


def find_token() -> str | None:
    """The API token from the environment, else from the OS keyring when ``keyring`` is installed."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    try:
        import keyring
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, KEYRING_USER) or None
    except Exception as exc:  # keyring backends raise their own errors (locked, no backend)
        log.warning("could not read the Replicate token from the keyring: %s", exc)
        return None


def _plain_png(image: Image.Image) -> bytes:
    """PNG bytes without metadata: provenance and case details stay on the machine."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


class ReplicateBackend:
    """Variations through a Replicate model (see the module docstring for the safeguards).

    Args:
        enabled: the user's explicit opt-in; False raises :class:`BackendDisabled` (no network).
        confirm_upload: called before each distinct image is uploaded; False cancels the run.
        token: API token (default: environment or keyring).
        config: model and limits.
        transport: httpx transport (tests pass ``httpx.MockTransport``).
        sleep, clock: injectable for tests.
    """

    name = "replicate"
    remote = True

    def __init__(self, *, enabled: bool, confirm_upload: Callable[[UploadNotice], bool], token: str | None = None,
                 config: ReplicateConfig | None = None, transport: Any = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        if not enabled:
            raise BackendDisabled("The Replicate backend is switched off; nothing was sent.",
                                  hint="Variations run locally. To use Replicate, switch it on in Settings > "
                                       "Generation (images will then be uploaded).")
        token = token or find_token()
        if not token:
            raise ConfigError("No Replicate API token found.",
                              hint=f"Set {TOKEN_ENV}, or store it in the OS keyring (service "
                                   f"'{KEYRING_SERVICE}', user '{KEYRING_USER}').")
        import httpx
        import replicate

        self.config = config or ReplicateConfig()
        self.confirm_upload = confirm_upload
        self._sleep = sleep
        self._clock = clock
        kwargs: dict[str, Any] = {"transport": transport} if transport is not None else {}
        self._client = replicate.Client(api_token=token, base_url=self.config.base_url,
                                        timeout=httpx.Timeout(30.0, connect=10.0), **kwargs)
        self._http = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True, **kwargs)
        self._uploads: dict[str, Any] = {}
        self._count = 1

    # ------------------------------------------------------------------------------------ batch
    def begin_batch(self, count: int) -> None:
        self._count = count

    def end_batch(self) -> None:
        """Delete this batch's uploads from Replicate (best effort: a failure is logged, not raised)."""
        uploads, self._uploads = self._uploads, {}
        if not self.config.delete_uploads:
            return
        for file in uploads.values():
            try:
                self._client.files.delete(file.id)
            except Exception as exc:
                log.warning("could not delete upload %s from Replicate: %s", file.id, exc)

    def provenance(self) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        safety = {"enabled": None, "note": "remote service: its own content policy applies, not checked here"}
        return {"service": "replicate", "model": self.config.model, "safety_checker": safety}, {}

    # ------------------------------------------------------------------------------------ edit
    def _upload(self, image: Image.Image) -> str:
        data = _plain_png(image)
        digest = sha256_bytes(data)
        if digest not in self._uploads:
            notice = UploadNotice("Replicate (api.replicate.com)", self.config.model, digest, len(data), self._count)
            if not self.confirm_upload(notice):
                raise Cancelled("Upload to Replicate declined; nothing was sent.")
            try:
                self._uploads[digest] = self._client.files.create(io.BytesIO(data), filename="face.png",
                                                                  content_type="image/png")
            except Exception as exc:
                raise RemoteError(f"Uploading the image to Replicate failed: {exc}") from exc
        return str(self._uploads[digest].urls["get"])

    def edit(self, image: Image.Image, spec: EditSpec, *, seed: int, progress: ProgressCallback | None,
             cancel: CancelToken | None) -> Image.Image:
        check(cancel)
        cfg = self.config
        inputs = {cfg.prompt_input: spec.instruction, cfg.image_input: self._upload(image), **cfg.extra_input}
        if cfg.seed_input:
            inputs[cfg.seed_input] = seed
        try:
            pred = self._client.predictions.create(model=cfg.model, input=inputs)
        except Exception as exc:
            raise RemoteError(f"Replicate refused the '{spec.label}' edit: {exc}") from exc
        deadline = self._clock() + cfg.timeout_s
        while pred.status not in TERMINAL:
            if cancel is not None and cancel.cancelled:
                self._cancel(pred)
                raise Cancelled()
            if self._clock() >= deadline:
                self._cancel(pred)
                raise RemoteError(f"Replicate did not finish the '{spec.label}' edit within {cfg.timeout_s:.0f} s; "
                                  "it was cancelled there.")
            if progress is not None:
                progress(ProgressEvent(0, 0, f"{pred.status} on Replicate"))
            self._sleep(cfg.poll_interval_s)
            try:
                pred.reload()
            except Exception as exc:
                raise RemoteError(f"Lost contact with Replicate during the '{spec.label}' edit: {exc}") from exc
        if pred.status != "succeeded":
            raise RemoteError(f"The Replicate model failed on the '{spec.label}' edit: {pred.error or pred.status}")
        return self._download(pred.output, spec)

    def _cancel(self, pred: Any) -> None:
        with contextlib.suppress(Exception):
            pred.cancel()

    def _download(self, output: Any, spec: EditSpec) -> Image.Image:
        url = output[0] if isinstance(output, list) and output else output
        if not isinstance(url, str) or not url:
            raise RemoteError(f"Replicate returned no image for the '{spec.label}' edit.")
        try:
            resp = self._http.get(url)
            resp.raise_for_status()
            return Image.open(io.BytesIO(resp.content)).convert("RGB")
        except Exception as exc:
            raise RemoteError(f"Downloading the '{spec.label}' result from Replicate failed: {exc}") from exc

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()
