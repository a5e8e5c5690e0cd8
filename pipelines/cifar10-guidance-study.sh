#!/usr/bin/env bash
# The 3-seed CIFAR-10 guidance study (issue 35): the recipe of pipelines/cifar10-cpu.yaml, test split, three
# seeds, each guided arm paired by seed with a SimCLR arm that ran on the same machine. Run it in a clone of this
# repository (the DVC project; `make install` first):
#
#   pipelines/cifar10-guidance-study.sh /abs/path/to/cifar10-jpeg OUT [ARM ...]
#
# Each ARM is one named DVC experiment, `gsimclr study pipelines/cifar10-cpu.yaml --name cifar10-ARM -S guidance...`.
# The first one trains everything (autoencoder, pseudo labels, SimCLR, the guided arm, the controls); DVC's run
# cache restores the stages a later ARM shares with it (SimCLR, the autoencoder, the controls), so a later ARM
# trains only its guided arm. The arms and what each one is: pipelines/cifar10-guidance-arms.sh. On a machine without
# the study's run cache, one arm can also be trained on its own beside a committed SimCLR arm of the same CPU
# kind: pipelines/cifar10-guidance-arm.sh.
#
# Each finished experiment's report (results/*.md, .csv, .json, .png) is copied to OUT/ARM; re-running the same
# command resumes the unfinished ARM from its checkpoints and skips the finished ones. Last, `gsimclr tabulate` puts
# every ARM beside the paper's G-SimCLR arm in OUT/table.md and draws their paired differences in
# OUT/paired_differences.png. The paper's arm is the committed 3-seed study (results/cifar10-cpu/: its own SimCLR
# pair, 2-core AMD EPYCs with AVX2, fp32) unless `paper` is one of the ARMs, which re-runs it on this machine.
set -euo pipefail
DATA=${1:?usage: $0 /abs/path/to/cifar10-jpeg OUT [ARM ...]}
OUT=${2:?usage: $0 /abs/path/to/cifar10-jpeg OUT [ARM ...]}
shift 2
# shellcheck source=pipelines/cifar10-guidance-arms.sh
source "$(cd "$(dirname "$0")" && pwd)/cifar10-guidance-arms.sh"
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(oracle-attract network-cancel-head oracle-batches)
for name in "${NAMES[@]}"; do
  [ -n "${ARMS[$name]+set}" ] || { echo "error: unknown arm $name (one of: ${!ARMS[*]})" >&2; exit 2; }
done
export MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for name in "${NAMES[@]}"; do
  [ -e "$OUT/$name/results.csv" ] && continue
  overrides=(-S "data.root=$DATA")
  for item in ${ARMS[$name]}; do overrides+=(-S "guidance.$item"); done
  gsimclr study pipelines/cifar10-cpu.yaml --name "cifar10-$name" "${overrides[@]}"
  mkdir -p "$OUT/$name"
  find results -maxdepth 1 -type f -exec cp {} "$OUT/$name/" \;
  cp params.yaml "$OUT/$name/params.yaml"
done

kind=$(python3 -c 'from gsimclr.system.machine import cpu_kind; print(cpu_kind())')
studies=()
[[ " ${NAMES[*]} " == *" paper "* ]] || studies+=("paper (committed study, x86_64-avx2 fp32)=results/cifar10-cpu/results.csv")
for name in "${NAMES[@]}"; do studies+=("$name ($kind)=$OUT/$name/results.csv"); done
gsimclr tabulate "${studies[@]}" --output "$OUT/table.md" --figure "$OUT/paired_differences.png" --data "CIFAR-10 (JPEG q75 copy)"
