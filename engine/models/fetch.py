"""Downloading models on request: streamed with progress, resumable, checked, installed atomically.

Nothing here runs unless the user asks for a download (``sketchface models download``, or the app's
Models page): the rest of the engine never touches the network. A transfer goes to a ``.part`` file
that later attempts resume with an HTTP Range request; the file is checked (digest, size, ONNX
signature) before it is renamed into place. ``…/buffalo_l.zip#det_10g.onnx`` means "that member of
that zip": the zip is cached, so the second model from the same zip is not downloaded again.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from engine import __version__, paths
from engine.errors import ConfigError, EngineError, ModelMissing
from engine.models import get_spec, model_dir
from engine.models.digests import expected_digest, hash_file, sha256_cached
from engine.models.install import Staged, Staging, commit, copy_stream, problems, raise_problems, stepper
from engine.models.manifest import ModelFile, ModelSpec
from engine.progress import CancelToken, ProgressCallback, Reporter, check

if TYPE_CHECKING:
    import httpx

MIRROR_ENV = "SKETCHFACE_MODEL_MIRROR"
# A download bigger than this (or than the size the manifest states for the file) is stopped: a server
# must not be able to fill the disk. The largest real model file is ~4.3 GB, buffalo_l.zip ~0.3 GB.
MAX_DOWNLOAD_BYTES = 8 << 30
_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")


class DownloadFailed(EngineError):
    """A model download did not complete (network error, HTTP error, corrupt archive)."""


_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
# Where each publisher's download host may redirect (its own CDN); anything else is refused. Integrity
# rests on the digests, but a redirect to an unexpected host is a sign of a hijacked mirror or link.
_PUBLISHER_CDNS = {"huggingface.co": ("huggingface.co", "hf.co"),
                   "github.com": ("github.com", "githubusercontent.com")}


def hub_offline(download: bool = False) -> None:
    """No silent hub traffic: the Hugging Face hub offline and its telemetry off, unless this is a download.

    ``setdefault``: a value the user exported is kept. Call it at start (CLI, desktop), before a library
    that reads these at import time (huggingface_hub, diffusers, transformers) is imported. Our own
    downloads use httpx with the manifest's pinned URLs, so they do not depend on the hub's settings.
    """
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if not download:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def require_https(url: str, what: str = "Model download") -> None:
    """Refuse plain http (and anything else) except to this machine; downloads are https only."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in _LOOPBACK:
        return  # never leaves this machine (a local proxy or a test server)
    raise ConfigError(f"{what} address {url!r} is not https: refused (plain http can be altered on the way).",
                      hint="Use an https:// address; an internal mirror must serve https.")


def _allowed_hosts(urls: list[str]) -> set[str]:
    hosts: set[str] = set()
    for url in urls:
        host = (urlsplit(url).hostname or "").lower()
        hosts.add(host)
        hosts.update(_PUBLISHER_CDNS.get(host, ()))
    return hosts


def _redirect_guard(allowed: set[str]) -> Callable[[httpx.Response], None]:
    """An httpx response hook refusing a redirect to a host outside ``allowed`` (or off https)."""
    def guard(response: httpx.Response) -> None:
        if not response.has_redirect_location:
            return
        nxt = response.request.url.join(response.headers["location"])
        target, host = str(nxt), (nxt.host or "").lower()
        ok_host = any(host == a or host.endswith("." + a) for a in allowed)
        try:
            require_https(target)
        except ConfigError:
            ok_host = False
        if not ok_host:
            raise DownloadFailed(f"{response.request.url} redirects to {target}, another host: refused.",
                                 hint="Download from the model's own source or an https mirror that serves the "
                                      "files itself.")
    return guard


def mirror_url(url: str, base_url: str | None) -> str:
    """Point ``url`` at a mirror: the mirror's scheme, host and path prefix replace the original's scheme and host.

    ``https://huggingface.co/h94/x.bin`` with mirror ``http://models.agency.local/hf`` becomes
    ``http://models.agency.local/hf/h94/x.bin``; the query and ``#member`` fragment are kept.
    """
    if not base_url:
        return url
    base = urlsplit(base_url)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise ConfigError(f"Model mirror {base_url!r} is not an https URL.",
                          hint="Give it as https://host[:port][/prefix].")
    require_https(base_url, "Model mirror")
    src = urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + src.path, src.query, src.fragment))


@dataclass(frozen=True)
class _Job:
    file: ModelFile
    url: str
    member: str | None


def _needed(spec: ModelSpec, f: ModelFile) -> bool:
    """True unless the file is present and matches its known digest (present and unknown counts as done)."""
    target = model_dir(spec.id) / f.path
    if not target.is_file():
        return True
    expected, _ = expected_digest(spec.id, f.path)
    return expected is not None and sha256_cached(target) != expected


def _jobs(spec: ModelSpec, base_url: str | None) -> list[_Job]:
    """What to fetch; refuses (before any network access) when a needed file has no download source."""
    jobs, no_url = [], []
    for f in spec.files:
        if not _needed(spec, f):
            continue
        if f.url is None:
            if not f.optional:
                no_url.append(f.path)
            continue
        url = mirror_url(f.url, base_url)
        require_https(url)
        split = urlsplit(url)
        jobs.append(_Job(f, urlunsplit(split._replace(fragment="")), split.fragment or None))
    if no_url:
        raise ModelMissing(
            f"{spec.title} cannot be downloaded: no download source for {', '.join(no_url)}; it must "
            "be imported.",
            hint=f"Get the files (source: {spec.source}) and run 'sketchface models import PATH' with "
                 f"a folder named {spec.id} holding them.",
        )
    return jobs


def download(model_id: str, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
             base_url: str | None = None, *, retries: int = 3, replace: bool = False,
             timeout: float = 60.0) -> list[str]:
    """Download a model's missing or damaged files; returns the relative paths installed (empty: nothing to do).

    Args:
        model_id: a manifest model id.
        progress: receives bytes transferred per file (the message names the file).
        cancel: stops the transfer; the ``.part`` file stays for a later resume, no final file is written.
        base_url: an internal mirror replacing the URLs' scheme and host (default: env SKETCHFACE_MODEL_MIRROR).
        retries: further attempts (each resuming) after a network error.
        replace: accept a file whose digest differs from the one pinned in the lock file.
        timeout: seconds to wait for the server to connect or send data.
    """
    spec = get_spec(model_id)
    jobs = _jobs(spec, base_url or os.environ.get(MIRROR_ENV) or None)
    if not jobs:
        return []
    import httpx

    http = httpx.Client(follow_redirects=True, timeout=httpx.Timeout(timeout),
                        headers={"User-Agent": f"SketchFace/{__version__}"},
                        event_hooks={"response": [_redirect_guard(_allowed_hosts([j.url for j in jobs]))]})
    with http, Staging() as staging:
        staged: list[Staged] = []
        zips: dict[str, Path] = {}
        for job in jobs:
            label = f"{model_id}/{job.file.path}"
            if job.member is None:
                part = model_dir(model_id) / f"{job.file.path}.part"
                part.parent.mkdir(parents=True, exist_ok=True)
                digest, size = _fetch(http, job.url, part, label, progress, cancel, retries, limit=job.file.size)
                staged.append(Staged(model_id, job.file.path, part, digest, size, f"download:{job.url}"))
            else:
                archive = _cached_zip(http, job.url, progress, cancel, retries)
                zips[job.file.path] = archive
                dst = staging.new_path(job.file.path)
                digest, size = _extract(archive, job.url, job.member, dst, label, progress, cancel)
                staged.append(Staged(model_id, job.file.path, dst, digest, size,
                                     f"download:{job.url}#{job.member}"))
        found = problems(staged, replace=replace)
        if found:
            for item in staged:
                if problems([item], replace=replace):  # wrong bytes must not be resumed or reused
                    item.tmp.unlink(missing_ok=True)
                    if item.rel in zips:
                        zips[item.rel].unlink(missing_ok=True)
            raise_problems(found)
        check(cancel)
        commit(staged)
    return [job.file.path for job in jobs]


def _cached_zip(http: httpx.Client, url: str, progress: ProgressCallback | None,
                cancel: CancelToken | None, retries: int) -> Path:
    """The zip at ``url``, from the download cache or fetched (resumably) into it."""
    name = Path(urlsplit(url).path).name or "archive.zip"
    folder = paths.cache_dir() / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"
    if dest.is_file():
        return dest
    part = dest.with_name(dest.name + ".part")
    _fetch(http, url, part, name, progress, cancel, retries)
    os.replace(part, dest)
    return dest


def _extract(archive: Path, url: str, member: str, dst: Path, label: str,
             progress: ProgressCallback | None, cancel: CancelToken | None) -> tuple[str, int]:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [i for i in zf.infolist() if not i.is_dir()]
            hits = [i for i in names if i.filename == member] or \
                   [i for i in names if i.filename.replace("\\", "/").endswith("/" + member)]
            if len(hits) != 1:
                raise DownloadFailed(f"{url} holds {'no' if not hits else 'several'} member(s) named {member}.",
                                     hint="The download source or mirror serves a different archive.")
            report = Reporter(progress, total=hits[0].file_size)
            with zf.open(hits[0]) as src:
                result = copy_stream(src, dst, stepper(report, f"extracting {label}"), cancel)
            report.emit(f"extracting {label}", force=True)
            return result
    except zipfile.BadZipFile as exc:
        archive.unlink(missing_ok=True)
        raise DownloadFailed(f"The archive downloaded from {url} is corrupt ({exc}).",
                             hint="It was removed; run the download again.") from exc


def _sleep(seconds: float, cancel: CancelToken | None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        check(cancel)
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))


def _fetch(http: httpx.Client, url: str, part: Path, label: str, progress: ProgressCallback | None,
           cancel: CancelToken | None, retries: int, limit: int | None = None) -> tuple[str, int]:
    """Bring ``url`` completely into ``part``, resuming what is there; returns (sha256, size).

    ``limit``: the size the manifest states (else :data:`MAX_DOWNLOAD_BYTES`); more is refused.
    """
    import httpx

    attempt = 0
    while True:
        check(cancel)
        try:
            done = _fetch_once(http, url, part, label, progress, cancel, limit or MAX_DOWNLOAD_BYTES)
            if done is not None:
                return done
        except (httpx.TransportError, _Retryable) as exc:
            attempt += 1
            if attempt > retries:
                raise DownloadFailed(
                    f"Downloading {url} failed ({exc}).",
                    hint="Run the same download again: it resumes where it stopped.",
                ) from exc
            _sleep(min(0.5 * attempt, 5.0), cancel)
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"Downloading {url} failed ({exc}).") from exc


class _Retryable(Exception):
    """A transient failure worth another (resuming) attempt: short body, HTTP 5xx/429."""


def _too_big(url: str, size: int, limit: int) -> DownloadFailed:
    return DownloadFailed(f"{url} sends {size} bytes or more, more than the {limit} expected; stopped.",
                          hint="The source or mirror serves a different file; nothing was installed.")


def _fetch_once(http: httpx.Client, url: str, part: Path, label: str, progress: ProgressCallback | None,
                cancel: CancelToken | None, limit: int = MAX_DOWNLOAD_BYTES) -> tuple[str, int] | None:
    """One request; returns (sha256, size) when ``part`` is complete, None to start over from byte 0."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with http.stream("GET", url, headers=headers) as r:
        start, total = _parse_content_range(r.headers.get("content-range"))
        if r.status_code == 416 and have:
            if total == have:  # the part was already complete
                return hash_file(part, cancel=cancel), have
            part.unlink()
            return None
        if r.status_code in (429, 500, 502, 503, 504):
            raise _Retryable(f"HTTP {r.status_code}")
        if r.status_code not in (200, 206):
            raise DownloadFailed(f"{url} answered HTTP {r.status_code}.",
                                 hint="Check the address, or the mirror given with --mirror.")
        if r.status_code == 206 and start != have:
            part.unlink(missing_ok=True)
            return None
        if r.status_code == 200:
            have = 0  # the server ignored Range: start over
        length = r.headers.get("content-length")
        expected = total if r.status_code == 206 else (int(length) if length else None)
        if expected is not None and expected > limit:
            raise _too_big(url, expected, limit)
        h = hashlib.sha256()
        if have:
            with open(part, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        report = Reporter(progress, total=expected or 0)
        report.done = have
        size = have
        with open(part, "ab" if have else "wb") as out:
            for chunk in r.iter_bytes(_CHUNK):
                check(cancel)
                if size + len(chunk) > limit:
                    raise _too_big(url, size + len(chunk), limit)
                out.write(chunk)
                h.update(chunk)
                size += len(chunk)
                report.step(len(chunk), label)
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and size != expected:
            raise _Retryable(f"received {size} of {expected} bytes")
        report.emit(label, force=True)
        return h.hexdigest(), size


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total and total != "*" else None)
