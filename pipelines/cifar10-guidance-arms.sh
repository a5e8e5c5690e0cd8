# The guided arms of the 3-seed CIFAR-10 guidance study (issue 35), sourced by cifar10-guidance-study.sh (every arm
# beside a SimCLR arm trained on the same machine) and cifar10-guidance-arm.sh (one arm beside a committed SimCLR arm
# of the machine's CPU kind): each arm's `guidance` overrides of pipelines/cifar10-cpu.yaml, chosen on the validation
# split by the one-seed screen (cifar10-guidance-screen.sh, docs/guidance.md). `oracle-*` arms read the true training
# labels in pretraining: an upper bound, not a method (every report and MLflow run says so): `oracle-attract` bounds
# guidance in the loss, `oracle-batches` bounds the paper's guided batches (stratified by the true classes). `paper`
# is the paper's G-SimCLR (autoencoder pseudo labels, guided batches).
# shellcheck disable=SC2034  # read by the scripts that source this file
declare -A ARMS=(
  [paper]=""
  [oracle-attract]="labels=oracle batches=random false_negatives=attract"
  [oracle-batches]="labels=oracle batches=guided false_negatives=keep"
  [network-cancel-head]="labels=network batches=random false_negatives=cancel warmup_epochs=2 refresh_every=2 refresh_k=10 refresh_features=head"
)
