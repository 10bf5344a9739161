#!/usr/bin/env bash
# Paper Table 4: Free adversarial training of composite model A and of A without center-surround, started from
# their standard checkpoints, then V1 scores and clean vs PGD accuracy.
# Full scale: CHECKPOINTS="<model A best.ckpt> <A without center-surround best.ckpt>" (ImageNet runs) with
# paths.data_dir holding imagenet/. Smoke: trains both on the demo data first, 4 effective epochs of Free AT.
source "$(dirname "$0")/../common.sh"
OUT=$LOG_DIR/adversarial
if [[ $SCALE == full ]]; then
  read -ra STANDARD <<< "${CHECKPOINTS:?set CHECKPOINTS to the ImageNet best.ckpt of model A and of A without CS}"
  TRAIN=() V1=() PGD=(eval.limit=5000)  # on the val split of the data each model was trained on
else
  TRAIN=(data=demo trainer=cpu trainer.max_epochs=4 model.scheduler.milestones=[2] data.train_per_class=40 data.val_per_class=20)
  V1=(eval.source=offline) PGD=()  # the val crops of the Free-AT run's data
  pretrain "$OUT" all all_without_center_surround
  STANDARD=("${PRETRAINED[@]}")
fi
for index in "${!STANDARD[@]}"; do
  RUN=$OUT/model$index/free_at
  "$PY" -m neurov1.train experiment=free_adversarial ckpt_init="${STANDARD[$index]}" "${TRAIN[@]}" \
    hydra.run.dir="$RUN" paths.log_dir="$LOG_DIR" "$@"
  "$PY" -m neurov1.evaluate eval=v1 ckpt_path="$RUN/checkpoints/best.ckpt" "${V1[@]}" paths.log_dir="$LOG_DIR" "$@"
  "$PY" -m neurov1.evaluate eval=adversarial ckpt_path="$RUN/checkpoints/best.ckpt" "${PGD[@]}" \
    paths.log_dir="$LOG_DIR" "$@"
done
report
