"""The case registry under concurrent writers and after damage: nothing lost, nothing silently reset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from engine import paths
from engine.cases import list_cases, open_case, registry
from engine.cli import main
from tests.engine.test_cases_support import new_case

ROOT = Path(__file__).resolve().parents[2]
_WORKER = """
import os, sys, time
from engine.cli import main
import engine.cases, engine.cli.cases  # loaded before the start signal, so all six start writing together
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.001)
sys.exit(main(["case", "new", sys.argv[2], "--title", "Concurrent " + sys.argv[2], "--user", "alice"]))
"""


def test_six_concurrent_case_new_processes_lose_nothing(tmp_path: Path, sketchface_home: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "SKETCHFACE_HOME": str(sketchface_home)}
    numbers = [f"2026-{i:04d}" for i in range(6)]
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(go), n], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in numbers]
    time.sleep(4.0)  # let every process finish importing and wait at the start line
    go.write_text("go")
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [o[1][-800:] for o in outs]
    registered = registry.load()
    assert sorted(e["case_number"] for e in registered.values()) == numbers
    assert all("anchor" in e for e in registered.values())  # every case's anchor copy survived as well
    assert len({e["path"] for e in registered.values()}) == 6
    for case_id in registered:  # and each is signed by the one workstation key the six shared
        with open_case(case_id) as case:
            report = case.verify()
            assert report.ok, [f.message for f in report.findings]


def test_same_number_from_two_processes_makes_one_case(tmp_path: Path, sketchface_home: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "SKETCHFACE_HOME": str(sketchface_home)}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(go), "2026-0001"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(3.0)
    go.write_text("go")
    outs = [p.communicate(timeout=120) for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 1]
    assert any("already exists" in err for _, err in outs)
    assert [e["case_number"] for e in registry.load().values()] == ["2026-0001"]


def test_garbled_registry_is_moved_aside_and_reported_not_overwritten(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    elsewhere = tmp_path / "encrypted_volume"
    with new_case("2026-0001") as local, new_case("2026-0002", location=elsewhere) as remote:
        local_id, remote_id = local.case_id, remote.case_id
    garbled = registry.registry_path().read_bytes()[:-40] + b"\x00\xff garbage"
    registry.registry_path().write_bytes(garbled)
    assert main(["case", "new", "2026-0003", "--title", "After the damage"]) == 0
    err = capsys.readouterr().err
    aside = [p for p in paths.data_dir().iterdir() if p.name.startswith(f"{registry.REGISTRY_NAME}.unreadable-")]
    assert len(aside) == 1 and aside[0].read_bytes() == garbled  # the damaged file is kept, byte for byte
    assert "moved aside" in err and aside[0].name in err
    ids = {r["case_id"] for r in list_cases()}
    assert local_id in ids  # found again under cases_dir()
    assert remote_id not in ids and str(elsewhere) not in json.dumps(registry.load())  # ... the message says where
    assert registry.take_notices() == []  # reported once


def test_registry_that_is_valid_json_of_the_wrong_shape_is_also_kept() -> None:
    registry.registry_path().write_text('["not", "a", "registry"]')
    assert registry.load() == {}
    assert not registry.registry_path().exists()
    assert any("moved aside" in n for n in registry.take_notices())
