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
# 6. synthetic identities       trainer make-synthetic: FaceID photos per training identity, ArcFace
#                                identity check, photo->sketch; attempts/s (after the models load)
# 7. bench/reconstruct.py --compile (last: the compile takes minutes; skipped when SKIP_COMPILE=1)
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
# Synthetic pairs per second: the trainer's own source on the SD 1.5 models of step 2 (installed, or the
# random-weight stand-ins it built in $MODELS), 512x512, 30 steps, on a procedural dataset whose teacher is
# the tiny ArcFace stand-in (its identity check costs far less than the real R50's: not measured here).
# Every photo is kept (bar -1), so attempts/s is pairs/s. JSON lines; the last one carries the figures.
step synthetic -c "
import sys, tempfile
from pathlib import Path
sys.path.insert(0, '.'); sys.path.insert(0, 'bench')
models, n_ids, per_id = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if (models / '.random-weights').exists():
    from reconstruct import allow_stand_ins
    allow_stand_ins()
from tests.fixtures.tiny_models import build_detector, build_recognizer
from tests.trainer.synthetic import write_dataset
work = Path(tempfile.mkdtemp())
build_detector(work / 'det.onnx')
build_recognizer(work / 'arc.onnx')
write_dataset(work / 'ds', n_ids, seed=0)
from trainer.__main__ import main
sets = [f'data.root=\"{work / \"ds\"}\"', f'teacher.detector_onnx=\"{work / \"det.onnx\"}\"',
        f'teacher.arcface_onnx=\"{work / \"arc.onnx\"}\"', f'synthetic.models_dir=\"{models}\"',
        'synthetic.min_cosine=-1.0', 'synthetic.safety_checker=false', 'synthetic.device=\"cuda\"',
        'model.pretrained=\"none\"', *sys.argv[4:]]
sys.exit(main(['make-synthetic', '--per-identity', str(per_id), *[a for s in sets for a in ('--set', s)]]))
" "$MODELS" "${SYNTH_IDS:-16}" "${SYNTH_PER_ID:-2}" ${SYNTH_SETS:-}
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
try:  # JSON lines: the last one ("done") carries the figures
    y = json.loads((out / "synthetic.json").read_text().strip().splitlines()[-1])
except (OSError, ValueError, IndexError):
    y = None
if y and y.get("event") == "done":
    rows.append(f"synthetic: {y.get('steady_attempts_per_s')} pairs/s after loading ({y.get('attempts_per_s')} with "
                f"loading), {y.get('synthetic_pairs')} pairs kept of {y.get('attempted')}")
t = load("train")
if t:
    rows.append(f"train: {t.get('images_per_s')} img/s, amp {t.get('amp')}, batch {t.get('batch')}, "
                f"peak VRAM {t.get('peak_vram_gb')} GB")
print("\n".join(rows) if rows else "no results: see the .log files")
(out / "summary.txt").write_text("\n".join(rows) + "\n")
EOF
