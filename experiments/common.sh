# Sourced by experiments/*/run.sh: run from the repository root with the project's Python.
# Usage: experiments/<entry>/run.sh [smoke|full] [extra Hydra overrides, e.g. paths.data_dir=/datasets]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-.venv/bin/python}
SCALE=${1:-smoke}
shift $(($# > 0 ? 1 : 0))
case $SCALE in
  smoke | full) ;;
  *) echo "usage: $0 [smoke|full] [Hydra overrides...]" >&2; exit 2 ;;
esac
# All entries of one scale share a log dir, so one results ledger (and one report) holds every table.
LOG_DIR=outputs/experiments/$SCALE
report() { "$PY" -m neurov1.report "$LOG_DIR/results"; }
# Smoke-scale stand-ins for ImageNet checkpoints: `pretrain <folder> <component preset>...` trains each set with
# experiment=smoke into <folder>/<preset>/standard and appends its best.ckpt to PRETRAINED. Their records go to a
# ledger of their own (<folder>/pretraining-results): they are not part of the tables.
OVERRIDES=("$@")
PRETRAINED=()
pretrain() {
  local folder=$1 components
  shift
  for components in "$@"; do
    "$PY" -m neurov1.train experiment=smoke callbacks=default "+model/components=$components" \
      hydra.run.dir="$folder/$components/standard" paths.log_dir="$LOG_DIR" \
      paths.results_dir="$folder/pretraining-results" "${OVERRIDES[@]}"
    PRETRAINED+=("$folder/$components/standard/checkpoints/best.ckpt")
  done
}
