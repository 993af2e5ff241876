"""``sketchface gallery ...`` and ``sketchface search`` end to end in-process, with the tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from tests.fixtures.photos import huge_png_header, small_photo_folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_gallery_commands_and_search(installed_models: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    photos = small_photo_folder(tmp_path / "in", 6)
    (tmp_path / "in" / "zero.jpg").write_bytes(b"")
    (tmp_path / "in" / "bomb.png").write_bytes(huge_png_header())
    code, out, _ = run(capsys, "gallery", "create", "Cases 2024", "--json")
    gid = json.loads(out)["id"]
    assert code == 0

    code, out, _ = run(capsys, "gallery", "add", "Cases 2024", str(tmp_path / "in"))
    assert code == 0 and "8 file(s) scanned" in out and "6 added" in out
    tail = out.split("Not indexed (2):")[1]
    assert "zero.jpg: the file is an empty file" in tail and "bomb.png: the file is 30000x30000" in tail

    code, out, _ = run(capsys, "gallery", "list", "--json")
    assert [g["id"] for g in json.loads(out)] == [gid]
    code, out, _ = run(capsys, "gallery", "info", gid, "--json", "--bad")
    info = json.loads(out)
    assert info["ok"] == 6 and info["error"] == 2 and len(info["bad"]) == 2 and info["model_sha256"]
    assert run(capsys, "gallery", "verify", gid)[0] == 0

    meta = tmp_path / "meta.csv"
    meta.write_text("path,subject_id,sex\n" + "".join(f"{p},S{i},{'MF'[i % 2]}\n" for i, p in enumerate(photos)))
    code, out, _ = run(capsys, "gallery", "import-metadata", gid, str(meta))
    assert code == 0 and "6 of 6" in out
    bad_meta = tmp_path / "bad.csv"
    bad_meta.write_text("path,sex\nnope.jpg,M\n")
    code, _, err = run(capsys, "gallery", "import-metadata", gid, str(bad_meta))
    assert code == 1 and "row 2" in err

    code, out, _ = run(capsys, "search", "--gallery", gid, "--photo", str(photos[1]), "--top", "3",
                       "--filter", "sex=F", "--json")
    result = json.loads(out)
    assert code == 0 and result["matches"][0]["photo_path"] == str(photos[1])
    assert result["matches"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert all(m["metadata"]["sex"] == "F" for m in result["matches"])
    assert result["manifest"]["filters"] == ["sex=F"] and result["manifest"]["k"] == 3
    code, out, _ = run(capsys, "search", "-g", "Cases 2024", "--photo", str(photos[0]), "--sketch", str(photos[2]),
                       "--weights", "2,1", "--top", "2")
    assert code == 0 and out.strip().startswith("1")
    code, _, err = run(capsys, "search", "-g", gid, "--photo", str(photos[0]), "--filter", "age~3")
    assert code == 1 and "Cannot read the filter" in err

    code, out, _ = run(capsys, "gallery", "remove", gid, str(photos[0]))
    assert code == 0 and "Removed 1 photo(s)" in out
    assert run(capsys, "gallery", "rebuild", gid)[0] == 0
    code, out, _ = run(capsys, "gallery", "verify", gid, "--json")
    assert code == 0 and json.loads(out)["store_faces"] == json.loads(out)["index_live"]
    assert run(capsys, "gallery", "delete", gid)[0] == 2  # needs --yes
    assert run(capsys, "gallery", "delete", gid, "--yes")[0] == 0
    code, _, err = run(capsys, "gallery", "info", gid)
    assert code == 1 and "No gallery" in err
