#!/usr/bin/env bash
# One arm of the CIFAR-10 guidance study (issue 35) trained on its own and paired by seed with the committed 3-seed
# study's SimCLR arm, controls and supervised reference (results/cifar10-cpu/: 2-core AMD EPYCs with AVX2, fp32) --
# for a machine of that CPU kind (x86_64-avx2) without the study's DVC run cache (`make install` first):
#
#   pipelines/cifar10-guidance-arm.sh /abs/path/to/cifar10-jpeg FOLDER ARM
#
# ARM is one of pipelines/cifar10-guidance-arms.sh. FOLDER gets params.yaml (the recipe of pipelines/cifar10-cpu.yaml
# with data.root and the arm's guidance), the prepared data and the arm's stages, whole seeds first: seed 0's
# pretraining and evaluation on two threads, then seeds 1 and 2 side by side on one thread each. Re-running the same
# command resumes: a finished stage is skipped, an unfinished one goes on from its checkpoint. Last, `gsimclr pair`
# writes FOLDER/report/ (results.md, results.csv, metrics.json, figures): the tables `compare` writes, the arm's rows
# beside the committed study's. The reuse holds only where the SimCLR code path is unchanged since that study: the
# golden-metrics test of x86_64-avx2 (tests/end_to_end/test_golden_metrics.py) passing is the evidence.
set -euo pipefail
usage="usage: $0 /abs/path/to/cifar10-jpeg FOLDER ARM"
DATA=${1:?$usage}
FOLDER=${2:?$usage}
ARM=${3:?$usage}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
# shellcheck source=pipelines/cifar10-guidance-arms.sh
source "$HERE/cifar10-guidance-arms.sh"
if [ -z "${ARMS[$ARM]:-}" ]; then  # `paper` is the committed study's own guided arm
  guided=()
  for name in "${!ARMS[@]}"; do [ -n "${ARMS[$name]}" ] && guided+=("$name"); done
  echo "error: unknown arm $ARM (one of: ${guided[*]})" >&2
  exit 2
fi
KIND=x86_64-avx2  # the committed study's machines
kind=$(python3 -c 'from gsimclr.system.machine import cpu_kind; print(cpu_kind())')
if [ "$kind" != "$KIND" ]; then
  echo "error: this CPU is $kind, the committed study's SimCLR ran on $KIND: pair the arm with a SimCLR arm of" \
    "this machine (pipelines/cifar10-guidance-study.sh)" >&2
  exit 2
fi
export MLFLOW_DISABLE_TELEMETRY=true
overrides=("data.root=$DATA")
for item in ${ARMS[$ARM]}; do overrides+=("guidance.$item"); done
mkdir -p "$FOLDER"
cd "$FOLDER"
python3 - "$REPO/pipelines/cifar10-cpu.yaml" "${overrides[@]}" > params.yaml.new <<'PY'
import sys
from pathlib import Path

import yaml

from gsimclr.pipeline.study import effective_params

print(yaml.safe_dump(effective_params(Path(sys.argv[1]), sys.argv[2:]).model_dump(mode="json"), sort_keys=False), end="")
PY
mv params.yaml.new params.yaml
gsimclr prepare
stage() {  # stage THREADS SEED NAME COMMAND...: skipped once its metrics file is written
  local threads=$1 seed=$2 name=$3
  shift 3
  [ -e "metrics/seed$seed/$name.json" ] && return 0
  echo "$(date -u +%T) seed $seed: $name ($threads thread(s))"
  OMP_NUM_THREADS=$threads gsimclr --seed "$seed" "$@"
}
stage 2 0 pretrain_gsimclr pretrain --method gsimclr
stage 2 0 evaluate_gsimclr evaluate --method gsimclr
lane() { stage 1 "$1" pretrain_gsimclr pretrain --method gsimclr && stage 1 "$1" evaluate_gsimclr evaluate --method gsimclr; }
lane 1 > lane-seed1.log 2>&1 &
first=$!
lane 2 > lane-seed2.log 2>&1 || { wait "$first" || true; echo "error: seed 2 failed: $FOLDER/lane-seed2.log" >&2; exit 1; }
wait "$first" || { echo "error: seed 1 failed: $FOLDER/lane-seed1.log" >&2; exit 1; }
gsimclr pair "$REPO/results/cifar10-cpu/results.csv" --baseline-params "$REPO/pipelines/cifar10-cpu.yaml" --output report
