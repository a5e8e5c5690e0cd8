#!/usr/bin/env bash
# One arm of the CIFAR-10 guidance study (issue 35) trained on its own and paired by seed with a committed 3-seed
# SimCLR arm of the same CPU kind and precision, with its controls and supervised reference -- for a machine without
# the study's DVC run cache (`make install` first):
#
#   pipelines/cifar10-guidance-arm.sh /abs/path/to/cifar10-jpeg FOLDER ARM [SEED ...]
#
# ARM is one of pipelines/cifar10-guidance-arms.sh; SEEDs (default 0 1 2) the seeds to train here, so that one arm's
# seeds can run on two machines of different kinds, each paired with SimCLR of its own kind, and be pooled after
# (`gsimclr pool`). The SimCLR arm each kind is paired with (BASELINES below): on x86_64-avx2 (fp32) the committed
# study results/cifar10-cpu/; on x86_64-avx512 with native bf16 the guidance study's own SimCLR arm
# (results/cifar10-guidance/oracle-attract/, whose SimCLR rows every arm of that study shares). Another kind or
# precision is refused: train the arm beside its own SimCLR there (pipelines/cifar10-guidance-study.sh). The stages
# run on the CPU even where a GPU is present, as the baselines did.
#
# FOLDER gets params.yaml (the recipe of pipelines/cifar10-cpu.yaml with data.root, the arm's guidance and the
# SEEDs), the prepared data and the arm's stages, whole seeds first: with an odd number of SEEDs the first one on
# two threads, then two at a time side by side on one thread each. Re-running the same command resumes: a finished
# stage is skipped, an unfinished one goes on from its checkpoint. Last, `gsimclr pair` writes FOLDER/report/
# (results.md, results.csv, metrics.json, figures): the tables `compare` writes, the arm's rows beside the
# baseline's. The reuse holds only where the SimCLR code path is unchanged since the baseline ran: the golden-metrics
# test of that kind (tests/end_to_end/test_golden_metrics.py) passing is the evidence.
set -euo pipefail
usage="usage: $0 /abs/path/to/cifar10-jpeg FOLDER ARM [SEED ...]"
DATA=${1:?$usage}
FOLDER=${2:?$usage}
ARM=${3:?$usage}
shift 3
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(0 1 2)
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
# shellcheck source=pipelines/cifar10-guidance-arms.sh
source "$HERE/cifar10-guidance-arms.sh"
if [ -z "${ARMS[$ARM]:-}" ]; then  # `paper` is the committed studies' own guided arm
  guided=()
  for name in "${!ARMS[@]}"; do [ -n "${ARMS[$name]}" ] && guided+=("$name"); done
  echo "error: unknown arm $ARM (one of: ${guided[*]})" >&2
  exit 2
fi
for seed in "${SEEDS[@]}"; do
  [[ $seed =~ ^[0-9]+$ ]] || { echo "error: seed $seed is not a whole number >= 0" >&2; exit 2; }
done
[ "$(printf '%s\n' "${SEEDS[@]}" | sort -u | wc -l)" -eq ${#SEEDS[@]} ] || {
  echo "error: seeds ${SEEDS[*]} name one seed twice" >&2
  exit 2
}
# CPU kind and the precision `pretrain.precision: auto` takes there -> the committed SimCLR study of that machine:
# its results.csv and params file.
guidance_study=results/cifar10-guidance/oracle-attract
declare -A BASELINES=(
  ["x86_64-avx2 fp32"]="results/cifar10-cpu/results.csv pipelines/cifar10-cpu.yaml"
  ["x86_64-avx512 bf16"]="$guidance_study/results.csv $guidance_study/params.yaml"
)
machine=$(python3 -c '
import torch
from gsimclr.system.machine import cpu_kind
from gsimclr.training.device import resolve_precision
print(cpu_kind(), resolve_precision("auto", torch.device("cpu")))')
if [ -z "${BASELINES[$machine]:-}" ]; then
  known=$(printf '%s, ' "${!BASELINES[@]}")
  echo "error: this CPU is $machine; committed SimCLR arms ran on: ${known%, }." \
    "Pair the arm with a SimCLR arm of this machine (pipelines/cifar10-guidance-study.sh)" >&2
  exit 2
fi
read -r baseline baseline_params <<< "${BASELINES[$machine]}"
export MLFLOW_DISABLE_TELEMETRY=true
overrides=("data.root=$DATA" "seeds=[$(IFS=,; echo "${SEEDS[*]}")]")
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
  OMP_NUM_THREADS=$threads gsimclr --device cpu --seed "$seed" "$@"
}
seed_run() {  # seed_run THREADS SEED: the arm's pretraining and evaluation of one seed
  stage "$1" "$2" pretrain_gsimclr pretrain --method gsimclr &&
    stage "$1" "$2" evaluate_gsimclr evaluate --method gsimclr
}
todo=("${SEEDS[@]}")
if [ $((${#todo[@]} % 2)) -eq 1 ]; then
  seed_run 2 "${todo[0]}"
  todo=("${todo[@]:1}")
fi
while [ ${#todo[@]} -gt 0 ]; do
  seed_run 1 "${todo[0]}" > "lane-seed${todo[0]}.log" 2>&1 &
  first=$!
  seed_run 1 "${todo[1]}" > "lane-seed${todo[1]}.log" 2>&1 || {
    wait "$first" || true
    echo "error: seed ${todo[1]} failed: $FOLDER/lane-seed${todo[1]}.log" >&2
    exit 1
  }
  wait "$first" || { echo "error: seed ${todo[0]} failed: $FOLDER/lane-seed${todo[0]}.log" >&2; exit 1; }
  todo=("${todo[@]:2}")
done
gsimclr pair "$REPO/$baseline" --baseline-params "$REPO/$baseline_params" --output report
