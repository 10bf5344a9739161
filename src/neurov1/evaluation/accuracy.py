"""Top-1 accuracy on the validation split with the fixation policy's glimpses: ``eval=accuracy``.

For each image: one prediction at the policy's fixation (its known centre for ``given``), and one from the
``glimpses`` best fixations of the policy (:func:`neurov1.models.fixation.glimpse_probabilities`), combined by
``rule`` (:func:`neurov1.models.fixation.combine_glimpses`); where the data knows the object centres, the mean
fixation error in degrees of visual angle. Writes ``accuracy.json``.
"""

import logging
import time
from pathlib import Path
from typing import Any

import torch

from neurov1.data.folders import make_loader
from neurov1.errors import ConfigError, check_int
from neurov1.evaluation.base import EvaluatedModel, Evaluation, Outcome, Provenance
from neurov1.models.fixation import (
    GLIMPSE_RULES,
    combine_glimpses,
    fixation_policy,
    glimpse_probabilities,
    last_fixations,
)
from neurov1.utils.io import write_json_atomic
from neurov1.utils.runtime import resolve_device

log = logging.getLogger(__name__)


class AccuracyEvaluation(Evaluation):
    """Validation top-1, single fixation and with ``glimpses`` fixations (``conf/eval/accuracy.yaml``).

    Args:
        glimpses: fixations per image (1: one).
        rule: how their predictions combine: ``mean`` softmax (the paper's five crops) or the ``confident`` one's
            (per image, the glimpse whose top class is most probable).
        device: ``auto`` (CUDA when there is one), ``cpu``, ``cuda``...
    """

    name = "accuracy"
    needs_data = True

    def __init__(self, glimpses: int = 5, rule: str = "mean", device: str = "auto") -> None:
        check_int(glimpses, "eval.glimpses", 5)
        if rule not in GLIMPSE_RULES:
            raise ConfigError(f"eval.rule: one of {list(GLIMPSE_RULES)} (how glimpses combine), got {rule!r}.")
        self.glimpses = glimpses
        self.rule = rule
        self.device = resolve_device(device, "eval.device")

    @torch.no_grad()
    def run(
        self, model: EvaluatedModel, out_dir: Path, datamodule: Any = None, provenance: Provenance = None
    ) -> Outcome:
        net = model.net.to(self.device).eval()
        dataset = datamodule.val_dataset
        loader = make_loader(dataset, datamodule.batch_size, datamodule.num_workers, pin_memory=False, train=False)
        degrees_per_unit = model.scoring.visual_degrees / 2
        correct = correct_glimpses = count = 0
        errors: list[torch.Tensor] = []
        started = time.time()
        for images, labels, *rest in loader:
            images, labels = datamodule.device_transform(images.to(self.device)), labels.to(self.device)
            centers = rest[0].to(self.device) if rest else None
            probabilities = glimpse_probabilities(net, images, self.glimpses, centers)  # (the policy's own first)
            combined = combine_glimpses(probabilities, self.rule)
            correct += int((probabilities[0].argmax(-1) == labels).sum())
            correct_glimpses += int((combined.argmax(-1) == labels).sum())
            count += len(labels)
            if centers is not None:
                known = ~centers.isnan().any(-1)
                fixations = last_fixations(net, len(images))
                fixations = centers.new_zeros(centers.shape) if fixations is None else fixations.to(centers)
                errors.append((fixations[known] - centers[known]).norm(dim=-1) * degrees_per_unit)
        error = float(torch.cat(errors).mean()) if errors and sum(len(e) for e in errors) else None
        result = {
            "model": model.label,
            "fixation": fixation_policy(net),
            "images": count,
            "glimpses": self.glimpses,
            "rule": self.rule,
            "acc1": correct / count,
            "acc1_glimpses": correct_glimpses / count,
            "fixation_error_degrees": error,
            "seconds": round(time.time() - started, 1),
            **(provenance or {}),
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        path = write_json_atomic(out_dir / "accuracy.json", result)
        log.info(
            "%s (fixation=%s): top-1 %.3f, with %d glimpses %.3f, fixation error %s on %d images; %s",
            model.label,
            result["fixation"],
            result["acc1"],
            self.glimpses,
            result["acc1_glimpses"],
            "n/a" if error is None else f"{error:.3f} deg",
            count,
            path,
        )
        metrics = {"accuracy/acc1": result["acc1"], "accuracy/acc1_glimpses": result["acc1_glimpses"]}
        if error is not None:
            metrics["accuracy/fixation_error"] = error
        return Outcome(
            result, metrics, result["acc1_glimpses"], settings={"glimpses": self.glimpses, "rule": self.rule}
        )
