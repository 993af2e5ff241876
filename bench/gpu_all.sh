#!/usr/bin/env bash
# GPU figures in one command (run from the repository root on a machine with an NVIDIA GPU):
#
#     bash bench/gpu_all.sh                 # results in bench/gpu_results/ (or $OUT), summary on stdout
#
# 1. sketchface doctor --json     the machine as the app sees it (ONNX providers that really load, VRAM, plan)
# 2. bench/reconstruct.py --json  SD 1.5 + FaceID, 512x512, 30 steps: s_per_image, peak_vram_gb (eager)
# 3. the same with an 8 GB cap    torch.cuda.set_per_process_memory_fraction + the memory plan for 8 GB
# 4. bench/ingest.py on the GPU   faces/s of the R50-cost recognizer; which provider really ran
# 5. bench/train.py with AMP      ViT-B-16 training images/s, peak VRAM
# 6. bench/reconstruct.py --compile (last: the compile takes minutes; skipped when SKIP_COMPILE=1)
#
# Without installed weights the benchmarks use real-size models with random weights (same FLOPs and
# memory; the JSON says "weights": "random ..."). Each step has its own time limit (STEP_TIMEOUT, s);
# a failed step is reported and the next one still runs. PY picks the interpreter (default .venv).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/gpu_results}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
STEP_TIMEOUT=${STEP_TIMEOUT:-420}
MODELS=${MODELS:-${TMPDIR:-/tmp}/sketchface_gpu_bench_models}
mkdir -p "$OUT"
unset SKETCHFACE_FORCE_CPU
export SKETCHFACE_HOME=${SKETCHFACE_HOME:-$(mktemp -d)}

step() {  # step NAME ARGS... : run one benchmark, JSON to $OUT/NAME.json, log to $OUT/NAME.log
  local name=$1; shift
  local t0=$SECONDS
  timeout "$STEP_TIMEOUT" "$PY" "$@" >"$OUT/$name.json" 2>"$OUT/$name.log"
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
}

: >"$OUT/steps.txt"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv >"$OUT/nvidia-smi.csv" 2>&1
step doctor -m engine.cli doctor --json
step reconstruct bench/reconstruct.py --json --models "$MODELS" --images 3
step reconstruct_8gb bench/reconstruct.py --json --models "$MODELS" --images 2 --vram-cap-gb 8
step ingest bench/ingest.py --json --photos "${INGEST_PHOTOS:-600}" --batch 256 --workers 8 --repeats 2
step train bench/train.py --json --amp auto --batch 64 --steps 20
if [ "${SKIP_COMPILE:-0}" != 1 ]; then
  step reconstruct_compiled bench/reconstruct.py --json --models "$MODELS" --images 3 --compile
fi

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
def load(name):
    try:
        return json.loads((out / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
rows = []
d = load("doctor")
if d:
    rows.append(f"doctor: torch {d.get('torch_device')} ({d.get('gpu')}), CUDA {d.get('cuda_version')}, "
                f"ONNX {d.get('onnx_device')} {d.get('onnx_providers')}, VRAM free {d.get('vram_free_gb')} GB, "
                f"plan {d.get('memory_plan', {}).get('placement')}")
for name in ("reconstruct", "reconstruct_8gb", "reconstruct_compiled"):
    r = load(name)
    if r:
        rows.append(f"{name}: {r.get('s_per_image')} s/image (baseline {r.get('baseline_s_per_image')}), "
                    f"peak VRAM {r.get('peak_vram_gb')} GB, plan {r.get('memory_plan', {}).get('placement')}, "
                    f"{r.get('measured')}, weights {r.get('weights')}")
i = load("ingest")
if i:
    rows.append(f"ingest: pipeline {i.get('pipeline_faces_per_s')} faces/s, raw {i.get('raw_model_faces_per_s')} "
                f"faces/s, provider {i.get('provider')} ({i.get('onnx_reason') or 'GPU'})")
t = load("train")
if t:
    rows.append(f"train: {t.get('images_per_s')} img/s, amp {t.get('amp')}, batch {t.get('batch')}, "
                f"peak VRAM {t.get('peak_vram_gb')} GB")
print("\n".join(rows) if rows else "no results: see the .log files")
(out / "summary.txt").write_text("\n".join(rows) + "\n")
EOF
