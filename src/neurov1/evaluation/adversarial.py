"""L-inf PGD robustness (paper Sec. 4.5, Table 4): ``eval=adversarial``, in [0, 1] pixel space.

PGD (Madry et al. 2018): from x0 (or a uniform random point of the eps-ball around it), ``steps`` times
x <- clamp(x + alpha sign(grad_x loss), x0 - eps, x0 + eps) clamped to [0, 1].
"""

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Subset
from tqdm import tqdm

from neurov1.data.folders import make_loader
from neurov1.data.transforms import PixelSpace
from neurov1.errors import ConfigError, check_fraction, check_int
from neurov1.evaluation.base import EvaluatedModel, Evaluation, Outcome, Provenance
from neurov1.evaluation.corruption_robustness import top1_accuracy
from neurov1.utils.io import write_json_atomic, write_text_atomic
from neurov1.utils.runtime import resolve_device
from neurov1.utils.tables import Table, csv_text, fmt

log = logging.getLogger(__name__)

CSV_COLUMNS = ["model", "eps", "steps", "step_size", "random_start", "images", "clean_acc1", "acc1"]


@dataclass(frozen=True)
class PGDAttack:
    """L-inf projected gradient descent in [0, 1] pixels (Madry et al. 2018).

    Args:
        eps: radius (paper's Free-AT training radius: 2/255).
        steps: gradient-sign steps.
        step_size: alpha per step (usual: 1/255 or eps/4).
        random_start: start from a uniform random point of the eps-ball (seeded by ``seed``) instead of x0.
    """

    eps: float
    steps: int
    step_size: float
    random_start: bool
    seed: int

    @classmethod
    def from_config(cls, settings: Mapping[str, Any], key: str) -> "PGDAttack":
        """The attack of the config node ``key``; ConfigError naming ``<key>.<field>`` for what cannot work."""
        names = [field.name for field in fields(cls)]
        unknown = sorted(set(settings) - set(names))
        if unknown:
            raise ConfigError(f"{key}: unknown keys {unknown}; PGD takes {', '.join(names)}.")
        return cls(**{name: settings.get(name) for name in names})._check(key)

    def _check(self, key: str) -> "PGDAttack":
        check_fraction(self.eps, f"{key}.eps", f"{key}.eps=0.00784 (2/255)")
        check_int(self.steps, f"{key}.steps", 10)
        check_fraction(self.step_size, f"{key}.step_size", f"{key}.step_size=0.00196 (eps/4)", positive=True)
        if not isinstance(self.random_start, bool):
            raise ConfigError(f"{key}.random_start: must be true or false, got {self.random_start!r}.")
        check_int(self.seed, f"{key}.seed", 0, minimum=0)
        return self

    def perturb(
        self, net: nn.Module, pixels: Tensor, labels: Tensor, space: PixelSpace, generator: torch.Generator
    ) -> Tensor:
        """Adversarial [0, 1] pixels within ``eps`` of ``pixels`` (L-inf) that raise the cross-entropy of ``net``."""
        adversarial = pixels.clone()
        if self.random_start:
            noise = torch.rand(pixels.shape, generator=generator).to(pixels.device)
            adversarial = (adversarial + self.eps * (2 * noise - 1)).clamp(0, 1)
        with torch.enable_grad():
            for _ in range(self.steps):
                adversarial.requires_grad_(True)
                loss = F.cross_entropy(net(space.normalize(adversarial)), labels, reduction="sum")
                (grad,) = torch.autograd.grad(loss, adversarial)
                adversarial = adversarial.detach() + self.step_size * grad.sign()
                adversarial = adversarial.clamp(pixels - self.eps, pixels + self.eps).clamp(0, 1)
        return adversarial.detach()


def pgd_accuracy(
    net: nn.Module, datamodule: L.LightningDataModule, attack: PGDAttack, limit: int | None = None
) -> dict[str, Any]:
    """Clean and PGD top-1 accuracy of ``net`` (put in eval mode) on the data module's val split.

    ``limit``: at most this many evenly spaced val images. Batches and workers are the data module's.
    """
    dataset = datamodule.val_dataset
    if limit and limit < len(dataset):
        dataset = Subset(dataset, np.linspace(0, len(dataset) - 1, limit).astype(int).tolist())
    loader = make_loader(dataset, datamodule.batch_size, datamodule.num_workers, pin_memory=False, train=False)
    net.eval()
    device = next(net.parameters()).device
    space = PixelSpace.of(datamodule, device)
    generator = torch.Generator().manual_seed(attack.seed)
    clean, robust = (top1_accuracy(datamodule.num_classes, device) for _ in range(2))
    started = time.time()
    with tqdm(total=len(dataset), unit="img", desc=f"PGD-{attack.steps}") as progress:
        for images, labels in loader:
            images, labels = datamodule.device_transform(images.to(device)), labels.to(device)
            adversarial = attack.perturb(net, space.pixels(images), labels, space, generator)
            with torch.no_grad():
                clean.update(net(images), labels)
                robust.update(net(space.normalize(adversarial)), labels)
            progress.update(len(labels))
    return {
        "attack": asdict(attack),
        "images": len(dataset),
        "clean_acc1": float(clean.compute()),
        "acc1": float(robust.compute()),
        "seconds": round(time.time() - started, 1),
    }


def adversarial_metrics(result: dict[str, Any]) -> dict[str, float]:
    """``adversarial/clean_acc1`` and ``adversarial/acc1`` for loggers and the results ledger."""
    return {"adversarial/clean_acc1": result["clean_acc1"], "adversarial/acc1": result["acc1"]}


def write_pgd_outputs(result: dict[str, Any], output_dir: Path, label: str) -> dict[str, Path]:
    """``adversarial_accuracy.md`` and ``.csv`` (one row: settings, clean and PGD accuracy) and ``.json``."""
    attack = result["attack"]
    values = [label, attack["eps"], attack["steps"], attack["step_size"], attack["random_start"], result["images"]]
    values += [result["clean_acc1"], result["acc1"]]
    row = [label, f"{attack['eps'] * 255:.3g}/255", str(attack["steps"]), f"{attack['step_size'] * 255:.3g}/255"]
    row += [str(attack["random_start"]).lower(), str(result["images"]), fmt(result["clean_acc1"]), fmt(result["acc1"])]
    header = ["model", "eps", "steps", "step size", "random start", "images", "clean acc1", "PGD acc1"]
    table = Table("L-inf PGD accuracy on the val split ([0, 1] pixel units)", header, [row])
    table.notes.append(f"PGD seed {attack['seed']}; {result['seconds']:.0f} s.")
    return {
        "markdown": write_text_atomic(output_dir / "adversarial_accuracy.md", table.markdown()),
        "csv": write_text_atomic(output_dir / "adversarial_accuracy.csv", csv_text([CSV_COLUMNS, values])),
        "json": write_json_atomic(output_dir / "adversarial_accuracy.json", {"model": label, **result}),
    }


class AdversarialEvaluation(Evaluation):
    """Clean vs L-inf PGD top-1 accuracy on the data module's validation split (paper Sec. 4.5, Table 4):
    ``eval=adversarial`` (``conf/eval/adversarial.yaml``).

    Args:
        attack: :class:`PGDAttack` settings; limit: at most this many evenly spaced images (None: all);
        device: ``auto`` (CUDA when there is one), ``cpu``, ``cuda``...
    """

    name = "adversarial"
    needs_data = True

    def __init__(self, attack: Mapping[str, Any], limit: int | None = None, device: str = "auto") -> None:
        self.attack = PGDAttack.from_config(attack, "eval.attack")
        if limit is not None:
            check_int(limit, "eval.limit", 1000)
        self.limit = limit
        self.device = resolve_device(device, "eval.device")

    def run(
        self, model: EvaluatedModel, out_dir: Path, datamodule: Any = None, provenance: Provenance = None
    ) -> Outcome:
        label = model.label
        result = pgd_accuracy(model.net.to(self.device), datamodule, self.attack, self.limit) | dict(provenance or {})
        paths = write_pgd_outputs(result, out_dir, label)
        log.info(
            "%s: clean %.3f, PGD-%d (eps %.3g/255) %.3f on %d images; %s",
            label,
            result["clean_acc1"],
            self.attack.steps,
            self.attack.eps * 255,
            result["acc1"],
            result["images"],
            paths["markdown"],
        )
        settings = {"attack": result["attack"], "limit": self.limit}
        return Outcome(result, adversarial_metrics(result), result["acc1"], settings=settings)
