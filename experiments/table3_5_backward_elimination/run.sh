#!/usr/bin/env bash
# Paper Tables 3 and 5: greedy backward elimination from center-surround + local RF + tuned norm + cortical mag.
# Rerunning the same command resumes an interrupted elimination.
source "$(dirname "$0")/../common.sh"
if [[ $SCALE == full ]]; then
  "$PY" -m neurov1.train -m experiment=paper_imagenet64 callbacks=v1 sweep=backward_elimination \
    hydra.sweeper.name=paper hydra/launcher=slurm paths.log_dir="$LOG_DIR" "$@"
else
  # offline only V1 Property can be scored (V1 Overall needs V1 Predictivity, i.e. network access)
  "$PY" -m neurov1.train -m experiment=smoke sweep=backward_elimination hydra.sweeper.name=smoke \
    'hydra.sweeper.start=[center_surround,tuned_norm,cortical_mag]' hydra.sweeper.metric=v1/property \
    paths.log_dir="$LOG_DIR" "$@"
fi
report
