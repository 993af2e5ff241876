"""Models: offline import (folder, zip, single file), refusals, lock-file pinning, verify, status, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from engine import cli, paths
from engine.errors import Cancelled, ModelInvalid, ModelMissing, ModelTampered
from engine.fsutil import sha256_bytes
from engine.models import MODELS, digests, file_sha256, installed, model_dir, model_path
from engine.models.bundle import BadBundle, import_bundle
from engine.models.store import FileState, status, verify
from engine.progress import CancelToken, ProgressEvent
from tests.engine.test_models_onnx import detector_bytes, recognizer_bytes

DET, REC = "buffalo_l.det_10g", "buffalo_l.w600k_r50"
DET_BYTES, REC_BYTES = detector_bytes(), recognizer_bytes()


def _buffalo_folder(root: Path, sub: str = "buffalo_l") -> Path:
    folder = root / sub
    folder.mkdir(parents=True)
    (folder / "det_10g.onnx").write_bytes(DET_BYTES)
    (folder / "w600k_r50.onnx").write_bytes(REC_BYTES)
    (folder / "1k3d68.onnx").write_bytes(b"a landmark model we do not use")
    return folder


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _models_dir_entries() -> set[str]:
    return {p.name for p in paths.models_dir().iterdir()}


def test_import_folder_installs_each_file_into_its_model_folder(tmp_path: Path) -> None:
    ids = import_bundle(_buffalo_folder(tmp_path))
    assert ids == [DET, REC]
    assert (paths.models_dir() / DET / "det_10g.onnx").read_bytes() == DET_BYTES
    assert (paths.models_dir() / REC / "w600k_r50.onnx").read_bytes() == REC_BYTES
    assert _models_dir_entries() == {DET, REC}  # no staging left, nothing else: the pins live in the config folder
    doc = json.loads(digests.lock_path().read_text())
    assert digests.lock_path().parent == paths.config_dir() and doc["signature"]
    lock = doc["folders"][str(paths.models_dir().resolve())]["files"]
    assert lock[f"{DET}/det_10g.onnx"]["sha256"] == sha256_bytes(DET_BYTES)
    assert lock[f"{REC}/w600k_r50.onnx"]["size"] == len(REC_BYTES)
    assert model_path(REC) == model_dir(REC) / "w600k_r50.onnx"


def test_import_zip_with_files_in_a_subfolder(tmp_path: Path) -> None:
    bundle = _zip(tmp_path / "buffalo_l.zip", {"buffalo_l/det_10g.onnx": DET_BYTES,
                                               "buffalo_l/w600k_r50.onnx": REC_BYTES,
                                               "buffalo_l/genderage.onnx": b"unused"})
    assert import_bundle(bundle) == [DET, REC]
    assert installed(DET) and installed(REC)
    assert file_sha256(REC) == sha256_bytes(REC_BYTES)


def test_import_single_file(tmp_path: Path) -> None:
    single = tmp_path / "downloads" / "w600k_r50.onnx"
    single.parent.mkdir()
    single.write_bytes(REC_BYTES)
    assert import_bundle(single) == [REC]
    assert installed(REC) and not installed(DET)


def test_model_id_layout_installs_the_manifest_files_of_a_diffusers_style_folder(tmp_path: Path) -> None:
    from engine.models.bundle import import_bundle_report

    root = tmp_path / "bundle" / "sd15.vae_ft_mse"
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"_class_name": "AutoencoderKL"}')
    (root / "diffusion_pytorch_model.safetensors").write_bytes(b"weights")
    (root / "README.md").write_text("extra file shipped with the model")
    (tmp_path / "bundle" / "config.json").write_text("{}")  # ambiguous without a model folder: skipped
    report = import_bundle_report(tmp_path / "bundle")
    assert report.models == ["sd15.vae_ft_mse"] and report.incomplete == {}
    assert [(f.model_id, f.file) for f in report.files] == [
        ("sd15.vae_ft_mse", "config.json"), ("sd15.vae_ft_mse", "diffusion_pytorch_model.safetensors")]
    assert dict(report.not_installed) == {
        "sd15.vae_ft_mse/README.md": "not a file of sd15.vae_ft_mse (only the manifest's files are installed)",
        "config.json": "could belong to several models: put it under a <model id>/ folder"}
    assert installed("sd15.vae_ft_mse")
    assert not (model_dir("sd15.vae_ft_mse") / "README.md").exists()  # only the manifest's files
    (result,) = verify("sd15.vae_ft_mse")
    assert {f.path: f.state for f in result.files} == {
        "config.json": FileState.OK, "diffusion_pytorch_model.safetensors": FileState.OK}


def test_bundle_with_nothing_recognised_is_refused(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text("{}")
    with pytest.raises(BadBundle, match="No model files recognised.*config.json"):
        import_bundle(tmp_path / "b")


@pytest.mark.parametrize("evil", ["../evil.onnx", "buffalo_l/../../evil.onnx", "/tmp/evil.onnx",
                                  "C:/evil.onnx", "..\\evil.onnx"])
def test_zip_with_escaping_member_is_refused_and_nothing_written(tmp_path: Path, evil: str) -> None:
    bundle = _zip(tmp_path / "b.zip", {"buffalo_l/det_10g.onnx": DET_BYTES, evil: b"payload"})
    with pytest.raises(BadBundle, match="refused"):
        import_bundle(bundle)
    assert _models_dir_entries() == set()
    assert not (paths.models_dir().parent / "evil.onnx").exists()


def test_zip_with_symlink_member_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "b.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("buffalo_l/det_10g.onnx", DET_BYTES)
        link = zipfile.ZipInfo("buffalo_l/w600k_r50.onnx")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../../etc/passwd")
    with pytest.raises(BadBundle, match="symbolic link"):
        import_bundle(bundle)
    assert _models_dir_entries() == set()


def test_folder_with_symlink_escaping_the_bundle_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "det_10g.onnx").write_bytes(DET_BYTES)
    secret = tmp_path / "secret.onnx"
    secret.write_bytes(REC_BYTES)
    (folder / "w600k_r50.onnx").symlink_to(secret)
    with pytest.raises(BadBundle, match="outside the bundle"):
        import_bundle(folder)
    assert _models_dir_entries() == set()


def test_manifest_digest_mismatch_refuses_the_whole_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = MODELS[DET]
    wrong = "0" * 64
    monkeypatch.setitem(MODELS, DET, dataclasses.replace(
        spec, files=(dataclasses.replace(spec.files[0], sha256=wrong),)))
    with pytest.raises(ModelInvalid) as err:
        import_bundle(_buffalo_folder(tmp_path))
    assert wrong in str(err.value) and sha256_bytes(DET_BYTES) in str(err.value)
    assert _models_dir_entries() == set()  # the recognizer, which was fine, was not installed either


def test_wrong_onnx_signature_is_refused_on_import(tmp_path: Path) -> None:
    folder = tmp_path / "buffalo_l"
    folder.mkdir()
    (folder / "det_10g.onnx").write_bytes(DET_BYTES)
    (folder / "w600k_r50.onnx").write_bytes(recognizer_bytes(dim=128))
    with pytest.raises(ModelInvalid, match="N×3×112×112, one output N×512"):
        import_bundle(folder)
    assert not installed(DET) and not installed(REC)


def test_pin_on_first_import_then_tampering_is_detected(tmp_path: Path) -> None:
    import_bundle(_buffalo_folder(tmp_path))
    (det, rec) = verify(DET) + verify(REC)
    assert det.ok and det.state == "ok" and det.files[0].expected_from == "lock"
    target = model_dir(REC) / "w600k_r50.onnx"
    before = target.stat()
    with open(target, "r+b") as f:  # flip bytes in place, then restore the timestamps
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    (result,) = verify(REC)
    assert result.state == "mismatch" and not result.ok
    (fc,) = result.files
    assert fc.expected == sha256_bytes(REC_BYTES)
    assert fc.actual == sha256_bytes(target.read_bytes()) != fc.expected
    assert status()[1].verified == "mismatch"


def test_reimport_of_a_different_pinned_file_needs_replace(tmp_path: Path) -> None:
    import_bundle(_buffalo_folder(tmp_path / "a"))
    other = tmp_path / "b" / "w600k_r50.onnx"
    other.parent.mkdir()
    other.write_bytes(REC_BYTES.replace(b"tiny", b"tinz"))  # a different, still valid recognizer
    with pytest.raises(ModelInvalid, match="--replace"):
        import_bundle(other)
    assert (model_dir(REC) / "w600k_r50.onnx").read_bytes() == REC_BYTES
    import_bundle(other, replace=True)
    entry = digests.read_lock()[f"{REC}/w600k_r50.onnx"]
    assert entry["sha256"] == sha256_bytes(other.read_bytes())
    assert entry["history"][0]["sha256"] == sha256_bytes(REC_BYTES)
    assert verify(REC)[0].ok


def test_verify_reports_missing_and_unpinned(tmp_path: Path) -> None:
    folder = model_dir(DET)
    folder.mkdir(parents=True)
    (folder / "det_10g.onnx").write_bytes(DET_BYTES)  # placed by hand: no digest known
    results = {r.model_id: r for r in verify()}
    assert results[DET].state == "unpinned" and results[DET].files[0].actual == sha256_bytes(DET_BYTES)
    assert results[REC].state == "not installed"
    assert results[REC].files[0].state is FileState.MISSING


def test_file_sha256_is_cached_and_rehashes_a_changed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import_bundle(_buffalo_folder(tmp_path))
    calls: list[Path] = []
    real = digests.hash_file

    def counting(path: Path, *args: Any, **kwargs: Any) -> str:
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(digests, "hash_file", counting)
    assert file_sha256(REC) == sha256_bytes(REC_BYTES)  # hashed at import: no rehash
    digests._memory.clear()  # a new process: the JSON cache still answers
    assert file_sha256(REC) == sha256_bytes(REC_BYTES)
    assert calls == []
    target = model_dir(REC) / "w600k_r50.onnx"
    target.write_bytes(REC_BYTES + b"changed")
    # A changed file is hashed again (once) and, differing from its pin, refused with the fix.
    for _ in range(2):
        with pytest.raises(ModelTampered, match="(?i)re-import or re-download"):
            file_sha256(REC)
    assert calls == [target]


def test_file_sha256_of_a_missing_model_says_what_to_do() -> None:
    with pytest.raises(ModelMissing, match="sketchface models import"):
        file_sha256(REC)


def test_cancelled_import_installs_nothing(tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        import_bundle(_buffalo_folder(tmp_path), cancel=token)
    assert _models_dir_entries() == set()


def test_import_cancelled_midway_through_a_file_installs_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "bundle" / "sketch_encoder"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(os.urandom(3 << 20))  # several copy chunks
    token = CancelToken()
    seen: list[int] = []

    def on_progress(event: ProgressEvent) -> None:
        seen.append(event.done)
        token.cancel()

    with pytest.raises(Cancelled):
        import_bundle(tmp_path / "bundle", progress=on_progress, cancel=token)
    assert seen == [1 << 20]  # stopped within the file, not after copying all of it
    assert _models_dir_entries() == set()


def test_verify_reads_the_bytes_even_when_the_digest_cache_says_otherwise(tmp_path: Path) -> None:
    import_bundle(_buffalo_folder(tmp_path))
    target = model_dir(REC) / "w600k_r50.onnx"
    digests.remember(target, "0" * 64)  # a stale or forged cache entry for the unchanged file
    (result,) = verify(REC)
    assert result.ok and result.files[0].actual == sha256_bytes(REC_BYTES)
    assert file_sha256(REC) == sha256_bytes(REC_BYTES)  # verify refreshed the cache


def test_status_verify_and_import_never_touch_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    import_bundle(_zip(tmp_path / "buffalo_l.zip", {"det_10g.onnx": DET_BYTES}))
    assert status(deep=True)[0].verified == "pinned at first import"  # trust on first use, not "ok"
    assert verify(DET)[0].ok


def test_cli_status_json_lists_every_model_with_what_to_do(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "import", str(_buffalo_folder(tmp_path))]) == 0
    capsys.readouterr()
    assert cli.main(["models", "status", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(MODELS)
    assert rows[DET]["installed"] and rows[DET]["verified"] == "pinned at first import" and rows[DET]["hint"] == ""
    assert rows[DET]["path"] == str(model_dir(DET))
    encoder = rows["sketch_encoder"]
    assert not encoder["installed"] and encoder["verified"] == "not installed"
    assert encoder["missing"] == ["model.safetensors", "config.json"]
    assert "sketchface models import" in encoder["hint"] and "download" not in encoder["hint"]
    assert "sketchface models download sd15.vae_ft_mse" in rows["sd15.vae_ft_mse"]["hint"]
    assert "non-commercial" in rows[REC]["licence"]


def test_cli_verify_exit_code_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "import", str(_buffalo_folder(tmp_path))]) == 0
    assert cli.main(["models", "verify", REC]) == 0
    assert "ok" in capsys.readouterr().out
    (model_dir(REC) / "w600k_r50.onnx").write_bytes(b"tampered")
    assert cli.main(["models", "verify"]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out and sha256_bytes(REC_BYTES) in captured.out
    assert "FAILED" in captured.err
    assert cli.main(["models", "verify", "sketch_encoder", "--json"]) == 1  # asked for, not installed
    assert json.loads(capsys.readouterr().out)["models"][0]["state"] == "not installed"


def test_cli_import_refusal_is_an_error_message_not_a_traceback(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _zip(tmp_path / "b.zip", {"../evil": b"x"})
    assert cli.main(["models", "import", str(bundle)]) == 1
    assert "escapes its folder" in capsys.readouterr().err
