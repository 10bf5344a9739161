"""An evaluation kind that lives outside neurov1: the contrast response of the artificial V1.

Full-field sinusoidal gratings (4 orientations x 2 phases) at increasing Michelson contrast are shown to the model at
its input size and normalisation (its scoring contract); the mean response of the committed V1 layer at each contrast
goes into ``contrast_response.json``, and the contrast at which the response first reaches half of its total rise
(C50, interpolated) is the headline number. It needs no data and no network access.
"""

import math
from pathlib import Path
from typing import Any

import torch

from neurov1.errors import ConfigError
from neurov1.evaluation.base import EvaluatedModel, Evaluation, Outcome, Provenance
from neurov1.models.activations import layer_outputs
from neurov1.utils.io import write_json_atomic


def gratings(size: int, cycles: float, contrast: float) -> torch.Tensor:
    """(8, 3, size, size) gratings in [0, 1] pixel units: 4 orientations x 2 phases, ``cycles`` per image."""
    offsets = torch.arange(size, dtype=torch.float32) / size
    y, x = torch.meshgrid(offsets, offsets, indexing="ij")
    images = []
    for orientation in range(4):
        theta = math.pi * orientation / 4
        for phase in (0.0, math.pi / 2):
            wave = torch.sin(2 * math.pi * cycles * (x * math.cos(theta) + y * math.sin(theta)) + phase)
            images.append(0.5 + 0.5 * contrast * wave)
    return torch.stack(images)[:, None].expand(-1, 3, -1, -1)


class ContrastResponse(Evaluation):
    """Mean V1 response to gratings at each contrast (settings: ``eval/contrast_response.yaml`` of your configs)."""

    name = "contrast_response"  # the ledger's eval field

    def __init__(self, contrasts: list[float], cycles: float = 8.0) -> None:
        if len(contrasts) < 2 or sorted(contrasts) != list(contrasts) or not 0 <= contrasts[0] <= contrasts[-1] <= 1:
            raise ConfigError(f"eval.contrasts: give at least two increasing contrasts in [0, 1], got {contrasts}.")
        if cycles <= 0:
            raise ConfigError(f"eval.cycles: must be > 0 (cycles per image), got {cycles}.")
        self.contrasts = list(contrasts)
        self.cycles = cycles

    @torch.no_grad()
    def run(
        self, model: EvaluatedModel, out_dir: Path, datamodule: Any = None, provenance: Provenance = None
    ) -> Outcome:
        net, contract = model.net.eval(), model.scoring
        device = next(net.parameters()).device
        mean = torch.tensor(contract.channel_mean(), device=device).view(3, 1, 1)
        std = torch.tensor(contract.channel_std(), device=device).view(3, 1, 1)
        responses = []
        for contrast in self.contrasts:
            images = (gratings(contract.image_size, self.cycles, contrast).to(device) - mean) / std
            v1 = layer_outputs(net, images, [contract.v1_layer])[contract.v1_layer]
            responses.append(float(v1.mean()))
        c50 = half_rise_contrast(self.contrasts, responses)
        result = {
            "model": model.label,
            "layer": contract.v1_layer,
            "contrasts": self.contrasts,
            "mean_response": responses,
            "c50": c50,
            **(provenance or {}),
        }
        write_json_atomic(Path(out_dir) / "contrast_response.json", result)
        metrics = {"contrast/gain": responses[-1] - responses[0]} | ({} if c50 is None else {"contrast/c50": c50})
        return Outcome(result, metrics, headline=c50, settings={"cycles": self.cycles})


def half_rise_contrast(contrasts: list[float], responses: list[float]) -> float | None:
    """The contrast where the response first reaches half its total rise (linear interpolation); None if it never
    rises."""
    if responses[-1] <= responses[0]:
        return None
    half = responses[0] + (responses[-1] - responses[0]) / 2
    for i in range(1, len(contrasts)):
        if responses[i - 1] < half <= responses[i]:
            rise = (half - responses[i - 1]) / (responses[i] - responses[i - 1])
            return contrasts[i - 1] + rise * (contrasts[i] - contrasts[i - 1])
    return None
