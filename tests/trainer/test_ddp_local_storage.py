"""Two machines without a shared file system, through ``python -m trainer train``'s own entry point.

Two Gloo processes on CPU stand for two machines: each has its own dataset copy's prototype cache and its
own run folder (its own disk). The caches differ, only rank 0 writes checkpoints, and yet a run stopped
early resumes on both machines from rank 0's state, and every run completes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import sys
from pathlib import Path

import numpy as np

from tests.trainer import synthetic
from tests.trainer.conftest import tiny_cli_args
from trainer.config import TeacherConfig
from trainer.data import pair_dataset
from trainer.state import load_state
from trainer.teacher import compute_prototypes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _machine(rank: int, port: int, args: list[str], log: str, home: str) -> None:
    """One machine: torchrun's environment, its own stdout file, the trainer's real command line."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1", "SKETCHFACE_HOME": home,
                       "SKETCHFACE_FORCE_CPU": "1"})
    import torch

    torch.set_num_threads(1)
    from trainer.__main__ import main

    with open(log, "w", encoding="utf-8") as out:
        sys.stdout = out
        code = main(args)
        out.flush()
    sys.exit(code)


def _two_machines(tmp: Path, tag: str, args_for: list[list[str]]) -> list[list[dict]]:  # type: ignore[type-arg]
    ctx = mp.get_context("spawn")
    port = _free_port()
    logs = [tmp / f"{tag}.rank{r}.jsonl" for r in range(2)]
    procs = [ctx.Process(target=_machine, args=(r, port, args_for[r], str(logs[r]), str(tmp / f"home{r}")))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0], [log.read_text("utf-8")[-2000:] for log in logs]
    return [[json.loads(line) for line in log.read_text("utf-8").splitlines() if line.startswith("{")]
            for log in logs]


def test_different_local_caches_and_run_folders_complete_a_second_run_and_a_resume(
        tmp_path: Path, tiny_models_dir: Path) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 36, seed=9)
    teacher = TeacherConfig(arcface_onnx=str(tiny_models_dir / "buffalo_l.w600k_r50" / "w600k_r50.onnx"),
                            detector_onnx=str(tiny_models_dir / "buffalo_l.det_10g" / "det_10g.onnx"), device="cpu")
    full = compute_prototypes(pair_dataset(root).pairs, teacher, tmp_path / "reference.npz")
    disks = [tmp_path / "machine0", tmp_path / "machine1"]
    for d in disks:
        d.mkdir()
    (disks[0] / "protos.npz").write_bytes((tmp_path / "reference.npz").read_bytes())  # rank 1's cache: none
    common = ("optim.batch_size=4", "optim.epochs=2", "optim.unfreeze_after_steps=1",
              "optim.unfreeze_last_blocks=1", "loss.sampled_softmax_classes=16", "loss.coral_sample=16",
              "run.log_every=1", "run.threads=1", "run.dist_timeout_min=2")

    def args(r: int, run: str, *extra: str) -> list[str]:
        return ["train", *tiny_cli_args(root, tiny_models_dir, disks[r] / run, *common,
                                        f"data.prototype_cache='{disks[r] / 'protos.npz'}'", *extra)]

    # A run stopped after 2 steps: only machine 0 holds last.pt.
    first = _two_machines(tmp_path, "first", [args(r, "run", "run.max_steps=2") for r in range(2)])
    assert (disks[0] / "run" / "last.pt").is_file() and not (disks[1] / "run" / "last.pt").exists()
    protos = next(e for e in first[0] if e["event"] == "prototypes")
    assert protos["computed"] == 0  # rank 0's vectors were shared with rank 1, nothing re-embedded
    assert load_state(disks[0] / "run" / "last.pt")["step"] == 2

    # The resume (a second run on the same machines, caches still different): both continue from step 2.
    resumed = _two_machines(tmp_path, "resume", [args(r, "run") for r in range(2)])
    events = resumed[0]
    assert next(e for e in events if e["event"] == "resume")["step"] == 2
    start = next(e for e in events if e["event"] == "start")
    done = next(e for e in events if e["event"] == "done")
    assert start["world_size"] == 2 and done["step"] == start["total_steps"] > 2
    assert not resumed[1]  # rank 1 reports nothing: it followed rank 0's state
    state = load_state(disks[0] / "run" / "last.pt")
    assert state["world_size"] == 2 and state["step"] == start["total_steps"]
    with np.load(disks[0] / "protos.npz") as z:
        assert sorted(z["ids"].tolist()) == sorted(full.ids)

    # A third, fresh run with each machine holding a different part of the cache completes too.
    ids = sorted(full.ids)
    for r, part in enumerate((ids[:20], ids[14:30])):
        keep = np.isin(np.array(full.ids), part)
        with np.load(tmp_path / "reference.npz") as z:
            doc = {k: z[k] for k in z.files}
        np.savez(disks[r] / "protos.npz", **{k: (v[keep] if v.ndim and len(v) == len(full.ids) else v)
                                             for k, v in doc.items()})
    third = _two_machines(tmp_path, "third", [args(r, "fresh") for r in range(2)])
    protos = next(e for e in third[0] if e["event"] == "prototypes")
    assert protos["computed"] == 6  # only the six photos no machine held were embedded
    assert third[0][-1]["event"] == "done" and (disks[0] / "fresh" / "export" / "config.json").is_file()
