"""Prototypes in a multi-machine run without a shared file system: each rank has its own local cache.

Two Gloo processes on CPU stand for two machines. Each gets its own cache file (its own disk); the
caches differ (one full, one empty; or each holding a different part). Every rank must end with the
same, complete prototypes, embed only what no rank held, and a second run must reuse everything.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.trainer import synthetic
from trainer.config import TeacherConfig
from trainer.data import pair_dataset
from trainer.runtime import DistInfo
from trainer.setup import _gather
from trainer.teacher import compute_prototypes, read_cache, write_cache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_main(rank: int, port: int, root: str, caches: list[str], models: str, out: str) -> None:
    """One 'machine': join the group, compute prototypes against its own cache, save what it got."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        cfg = TeacherConfig(arcface_onnx=str(Path(models) / "buffalo_l.w600k_r50" / "w600k_r50.onnx"),
                            detector_onnx=str(Path(models) / "buffalo_l.det_10g" / "det_10g.onnx"), device="cpu")
        dist = DistInfo(2, rank, rank, torch.device("cpu"))
        protos = compute_prototypes(pair_dataset(root).pairs, cfg, Path(caches[rank]), rank=rank, world=2,
                                    gather=_gather(dist), batch=4)
        np.savez(Path(out) / f"rank{rank}.npz", ids=np.array(protos.ids), vectors=protos.vectors,
                 counts=np.array([protos.computed, protos.reused, protos.computed_here]))
    finally:
        torch.distributed.destroy_process_group()


def _run_two_ranks(root: Path, caches: list[Path], models: Path, out: Path) -> list[dict[str, np.ndarray]]:
    out.mkdir(parents=True, exist_ok=True)
    for f in out.glob("rank*.npz"):
        f.unlink()
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, port, str(root), [str(c) for c in caches], str(models),
                                                  str(out))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0], "a rank failed (see its traceback above)"
    results = []
    for r in range(2):
        with np.load(out / f"rank{r}.npz") as z:
            results.append({k: z[k] for k in z.files})
    return results


@pytest.mark.slow
def test_ranks_with_different_local_caches_agree_and_a_second_run_reuses_everything(
        tmp_path: Path, tiny_models_dir: Path) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 12, seed=7)
    arc = tiny_models_dir / "buffalo_l.w600k_r50" / "w600k_r50.onnx"
    cfg = TeacherConfig(arcface_onnx=str(arc), detector_onnx=str(tiny_models_dir / "buffalo_l.det_10g" / "det_10g.onnx"),
                        device="cpu")
    full = compute_prototypes(pair_dataset(root).pairs, cfg, tmp_path / "reference.npz")
    machine0, machine1 = tmp_path / "m0" / "protos.npz", tmp_path / "m1" / "protos.npz"
    machine0.parent.mkdir()
    machine1.parent.mkdir()
    machine0.write_bytes((tmp_path / "reference.npz").read_bytes())  # rank 0: the full cache; rank 1: none

    first = _run_two_ranks(root, [machine0, machine1], tiny_models_dir, tmp_path / "out1")
    for res in first:
        assert res["ids"].tolist() == full.ids
        assert np.allclose(res["vectors"], full.vectors, atol=1e-6)
        assert res["counts"].tolist()[0] == 0  # nothing re-embedded: rank 0's vectors were shared

    # A resume / second run on the same machines: still nothing to embed, the same vectors everywhere.
    second = _run_two_ranks(root, [machine0, machine1], tiny_models_dir, tmp_path / "out2")
    for res in second:
        assert np.allclose(res["vectors"], full.vectors, atol=1e-6) and res["counts"].tolist()[0] == 0

    # Each machine holds a different part, and two photos are in neither: only those two are embedded,
    # one by each rank, and both ranks end with all of them.
    sha = str(np.load(machine0)["arcface_sha256"])
    entries = read_cache(machine0, sha)
    ids = sorted(entries)
    write_cache(machine0, {i: entries[i] for i in ids[:6]}, sha)
    write_cache(machine1, {i: entries[i] for i in ids[6:10]}, sha)
    third = _run_two_ranks(root, [machine0, machine1], tiny_models_dir, tmp_path / "out3")
    for r, res in enumerate(third):
        assert np.allclose(res["vectors"], full.vectors, atol=1e-6)
        computed, _reused, here = res["counts"].tolist()
        assert computed == 2 and here == 1, (r, res["counts"])
    assert len(read_cache(machine0, sha)) == 12  # rank 0's cache is complete again
