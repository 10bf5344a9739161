#!/usr/bin/env bash
# Paper Tables 8-10: Tiny-ImageNet-C accuracy of the baseline and composite model A after head-only fine-tuning.
# Full scale: CHECKPOINTS="<baseline best.ckpt> <model A best.ckpt>" (ImageNet runs; the first is the mCE baseline)
# with paths.data_dir holding tiny-imagenet-200/ and Tiny-ImageNet-C/.
# Smoke: trains both on the demo data, fine-tunes a new head on it and corrupts its val split (neurov1.corrupt --demo).
source "$(dirname "$0")/../common.sh"
OUT=$LOG_DIR/robustness
if [[ $SCALE == full ]]; then
  read -ra IMAGENET <<< "${CHECKPOINTS:?set CHECKPOINTS to the ImageNet best.ckpt of the baseline and of model A}"
  TUNE=() EVAL=()
else
  TUNE=(data=demo trainer=cpu trainer.max_epochs=2) EVAL=(eval.corruption.root="$OUT/demo-c")
  "$PY" -m neurov1.corrupt --demo "$OUT/demo-c" --limit 20
  pretrain "$OUT" none all
  IMAGENET=("${PRETRAINED[@]}")
fi
BASELINE=()
for index in "${!IMAGENET[@]}"; do
  "$PY" -m neurov1.train experiment=finetune_tiny_imagenet ckpt_init="${IMAGENET[$index]}" "${TUNE[@]}" \
    hydra.run.dir="$OUT/model$index/finetuned" paths.log_dir="$LOG_DIR" "$@"
  "$PY" -m neurov1.evaluate eval=corruption ckpt_path="$OUT/model$index/finetuned/checkpoints/best.ckpt" \
    "${EVAL[@]}" "${BASELINE[@]}" hydra.run.dir="$OUT/model$index/corruption" paths.log_dir="$LOG_DIR" "$@"
  BASELINE=(eval.corruption.baseline="$OUT/model0/corruption/corruption_accuracy.csv")
done
report
