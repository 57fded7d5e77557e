#!/usr/bin/env bash
# GPU check: what a lent GPU machine runs as is (at most ~11 minutes on one GPU).
#
#   bash benchmarks/gpu_check.sh [--smoke-test] [--out FILE]
#
# Installs nothing: it assumes raynas is installed (pip install ".[dev]") with a CUDA build of
# torch. Steps, each with its own time limit:
#   1. the PC-DARTS K benchmark on CUDA (benchmarks/pcdarts_memory.py --device cuda);
#   2. one coarse and one fine trial at the msd_task02_8gpu preset's search patch (96x96x64) and
#      width (16), AMP on and off: step time, peak memory, time split
#      (benchmarks/search_cost.py --scale 1 --device cuda; 10 cases, short epochs);
#   3. a smoke search with --gpus 1 (raynas search --preset smoke, one GPU per trial);
#   4. resume = uninterrupted with deterministic: true (benchmarks/resume_check.py): a fine
#      trial under fp16 (two GradScalers in the checkpoint) and a retrain trial under amp=auto
#      (bf16 where supported), each run straight, rerun, and resumed from epoch 1; the step
#      fails unless the resumed run's losses and weights equal the straight run's bit for bit
#      (its JSON says whether a rerun alone already differs: non-deterministic kernels).
# Writes benchmarks/results/gpu_check.json (gpu_check_smoke.json with --smoke-test), stamped
# (raynas.bench.provenance: commit, code digest, config) with the seconds per step.
#
# --smoke-test runs on CPU in about a minute (CI runs it): tiny sizes, K = 1 and 4, one trial run
# (amp=auto is float32 on CPU), step 3 is skipped (recorded as skipped) because a CPU smoke
# search takes minutes of its own, and step 4 runs one retrain trial under fp16 on CPU
# (torch.amp.GradScaler("cpu"), so the scaler state goes through the checkpoint there too).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SMOKE=0
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke-test) SMOKE=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (use --smoke-test, --out FILE)" >&2; exit 2 ;;
  esac
done
if [[ -z "$OUT" ]]; then
  if [[ $SMOKE == 1 ]]; then OUT="$HERE/results/gpu_check_smoke.json"; else OUT="$HERE/results/gpu_check.json"; fi
fi
PY="${PYTHON:-python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/raynas-gpu-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
declare -A STATUS

step() {  # step NAME LIMIT_S COMMAND...: runs, records its exit status and seconds
  local name="$1" limit="$2"; shift 2
  local t0=$(date +%s) rc=0
  echo "== $name (limit ${limit}s): $*"
  timeout "$limit" "$@" >"$WORK/$name.log" 2>&1 || rc=$?
  tail -n 12 "$WORK/$name.log"
  STATUS[$name]="$rc $(( $(date +%s) - t0 ))"
  echo "== $name: exit $rc in $(( $(date +%s) - t0 )) s"
}

if [[ $SMOKE == 1 ]]; then
  DEVICE=cpu
  step pcdarts 300 "$PY" "$HERE/pcdarts_memory.py" --smoke-test --device cpu --ks 1,4 \
    --out "$WORK/pcdarts.json"
  # amp=auto is float32 on CPU, so one trial run stands for both settings here
  step trial_amp_on 300 "$PY" "$HERE/search_cost.py" --smoke-test --device cpu \
    --label amp_on --set amp=auto --out "$WORK/trials.json"
  step resume_fp16 300 "$PY" "$HERE/resume_check.py" --smoke-test --out "$WORK/resume_fp16.json"
else
  DEVICE=cuda
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "gpu_check.sh: no CUDA device (use --smoke-test on CPU)" >&2; exit 2; }
  step pcdarts 120 "$PY" "$HERE/pcdarts_memory.py" --device cuda --out "$WORK/pcdarts.json"
  for amp in on off; do
    flag=auto; [[ $amp == off ]] && flag=off
    step "trial_amp_$amp" 120 "$PY" "$HERE/search_cost.py" --device cuda --scale 1 --cases 10 \
      --threads 8 --coarse-epochs 1 --fine-epochs 2 --coarse-steps 40 --fine-steps 20 \
      --label "amp_$amp" --set "amp=$flag" --set data.num_workers=4 --out "$WORK/trials.json"
  done
  step search 240 bash -c "cd '$WORK' && raynas search --space c2f --dataset synthetic \
    --preset smoke --gpus 1 --set resources.gpus_per_trial=1 --storage-path '$WORK/runs' \
    --tracking-uri '$WORK/mlflow.db'"
  step resume_fp16 90 "$PY" "$HERE/resume_check.py" --device cuda --amp fp16 --stage fine \
    --deterministic true --out "$WORK/resume_fp16.json"
  step resume_auto 90 "$PY" "$HERE/resume_check.py" --device cuda --amp auto --stage retrain \
    --deterministic true --out "$WORK/resume_auto.json"
fi

STEPS=""
for name in "${!STATUS[@]}"; do STEPS+="$name=${STATUS[$name]};"; done
"$PY" - "$OUT" "$WORK" "$SMOKE" "$DEVICE" "$(( $(date +%s) - START ))" "$STEPS" <<'EOF'
import json, sys
from pathlib import Path

out, work, smoke, device, seconds, steps = sys.argv[1:]
work = Path(work)
status = {}
for item in filter(None, steps.split(";")):
    name, rest = item.split("=")
    rc, secs = rest.split()
    status[name] = {"exit": int(rc), "seconds": int(secs)}

def load(name):
    path = work / name
    return json.loads(path.read_text()) if path.is_file() else None

def tail(name):
    path = work / f"{name}.log"
    return path.read_text()[-2000:] if path.is_file() else ""

import torch
from raynas.bench import stamp, write_result
result = {
    "benchmark": "gpu_check",
    "smoke_test": smoke == "1",
    "stamp": stamp({"smoke_test": smoke == "1", "device": device,
                    "steps": sorted(status)}, dataset=None, dataset_digest=None,
                   seeds=[0], script="benchmarks/gpu_check.sh"),
    "device": device,
    "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
    "seconds": {**{n: s["seconds"] for n, s in status.items()}, "total": int(seconds)},
    "steps": status,
    "pcdarts": load("pcdarts.json"),
    "trials": load("trials.json"),
    "resume": {name: load(f"resume_{name}.json") for name in ("fp16", "auto")
               if (work / f"resume_{name}.json").is_file()},
    "search": ({"skipped": "CPU smoke test (a smoke search takes minutes on CPU)"}
               if smoke == "1" else {"log_tail": tail("search"), **status.get("search", {})}),
}
trials = result["trials"] or {}
summary = {}
for label in ("amp_on", "amp_off"):
    run = trials.get(label)
    if run:
        summary[label] = {
            stage: {k: run["stages"][stage].get(k) for k in ("step_s", "peak_memory_mib", "amp", "percent")}
            for stage in ("coarse", "fine")
        }
result["summary"] = summary
write_result(out, result)  # the step files are stamped too; each keeps its own stamp
print(f"wrote {out}")
failed = [n for n, s in status.items() if s["exit"] != 0]
print("failed steps: " + (", ".join(failed) if failed else "none"))
sys.exit(1 if failed else 0)
EOF
