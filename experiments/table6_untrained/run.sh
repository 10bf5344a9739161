#!/usr/bin/env bash
# Paper Table 6: V1 scores of untrained ResNet-50 variants (the baseline, each component, composite model A).
source "$(dirname "$0")/../common.sh"
if [[ $SCALE == full ]]; then
  ARCH=resnet50 INPUT=()
else
  # offline only the 7 Marques2020 benchmarks that are reproduced locally can be scored
  ARCH=resnet18 INPUT=(eval.source=offline)
fi
for components in none center_surround local_rf divisive_norm tuned_norm cortical_mag all; do
  "$PY" -m neurov1.evaluate eval=v1 ckpt_path=null model.net.arch=$ARCH "+model/components=$components" \
    "${INPUT[@]}" paths.log_dir="$LOG_DIR" "$@"
done
report
