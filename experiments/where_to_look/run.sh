#!/usr/bin/env bash
# Where to look (the paper's Sec. 5 future work): the cortical magnification with a moving fixation. Each fixation
# policy (center, given, learned, saliency) on composite model A, 3 seeds, with known object centres; V1 probe with
# the gaze pinned at the centre; validation with 5 glimpses; then the report's "Where to look" table.
source "$(dirname "$0")/../common.sh"
POLICIES=center,given,learned,learned_heatmap,saliency
if [[ $SCALE == full ]]; then
  # ImageNet-64, ResNet-50, object boxes of the ILSVRC2012 localisation files (LOC_train_solution.csv and
  # LOC_val_solution.csv) in ${paths.data_dir}/imagenet_loc unless data.boxes=<folder> is given.
  "$PY" -m neurov1.train -m experiment=paper_imagenet64 +model/components=all fixation=$POLICIES seed=0,1,2 \
    'data.boxes=${paths.data_dir}/imagenet_loc' model.glimpses=5 callbacks=v1_probe hydra/launcher=slurm \
    paths.log_dir="$LOG_DIR" "$@"
else
  # the off-centre demo: each class crop at 28 px at a random place on a 64 px canvas of low-contrast clutter
  "$PY" -m neurov1.train -m experiment=smoke data.placement=random +model/components=all fixation=$POLICIES \
    seed=0 model.glimpses=5 callbacks=v1_probe callbacks.v1_probe.every_n_epochs=0 \
    callbacks.v1_probe.evaluation.source=offline paths.log_dir="$LOG_DIR" "$@"
fi
report
