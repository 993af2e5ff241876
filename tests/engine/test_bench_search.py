"""bench/search.py runs exact (per query and batched) beside HNSW in one run, checks exact recall, and
self-tunes the compact index with the gallery's own routine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_side_by_side_checks_exact_recall_and_tunes_the_compact_index() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "search.py"), "--n", "2000", "--queries", "30",
                          "--side-queries", "30", "--k", "10", "--tune", "--compact", "--exact-timed", "5",
                          "--threads", "1", "--no-isotropic", "--json"],
                         capture_output=True, text=True, timeout=300, check=True)
    doc = json.loads(out.stdout)
    for name in ("photo", "sketch"):
        row = doc["side_by_side"][name]
        assert row["exact_recall_is_1"] and row["exact_cpu"]["recall_at_k"] == 1.0
        assert row["exact_cpu_batched"]["recall_at_k"] == 1.0 and "hnsw" in row
        # Memory figures are the process's RSS growth: at 2,000 faces the allocator may reuse freed memory
        # and show none, so only their presence is checked here (the bench's figures are at 100k and 1M).
        assert all(row[m]["bytes_per_vector"] >= 0 for m in ("exact_cpu", "exact_cpu_batched", "hnsw"))
    tuning = doc["compact"]["tuning"]
    assert tuning["rerank"] >= 10 and doc["compact"]["rerank"] == tuning["rerank"]
    assert doc["compact"]["ef"] == tuning["ef"] and "reached" in tuning
