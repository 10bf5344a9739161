#!/usr/bin/env bash
# Paper Tables 1-2: the baseline and each component alone (3 seeds at full scale), scored on V1 at the end.
source "$(dirname "$0")/../common.sh"
if [[ $SCALE == full ]]; then
  "$PY" -m neurov1.train -m experiment=paper_imagenet64 callbacks=v1 sweep=single_component \
    hydra/launcher=slurm paths.log_dir="$LOG_DIR" "$@"
else
  "$PY" -m neurov1.train -m experiment=smoke sweep=single_component seed=0,1 paths.log_dir="$LOG_DIR" "$@"
fi
report
