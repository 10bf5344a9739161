"""The scoring contract: what a model commits to when it is scored, in one object saved with its checkpoint.

The committed V1 layer, the field of view of its input (``visual_degrees``, Brain-Score's model commitment), the
input size and normalisation it was trained with, and whether its classification evaluations also report the mean
prediction over five crops. Every scoring path (``eval=v1``, ``v1_probe``, ``regions``, ``corruption``,
``adversarial``, ``analyze``, the Brain-Score export) reads them from here.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

IMAGE_SIZE = 64  # the paper's input side in pixels (ImageNet at 64x64)
VISUAL_DEGREES = 8.0  # the paper's field of view for its 64 px inputs (Brain-Score V1 benchmarks' default commitment)
NORMALISATION = 0.5  # every neurov1 data module's default mean and std (ToTensor, then Normalize(0.5, 0.5))


@dataclass(frozen=True)
class ScoringContract:
    """What a model commits to when scored.

    Attributes:
        v1_layer: the module (in the network) whose output is the artificial V1.
        image_size: the input's side in pixels (``model.net.input_size``).
        visual_degrees: the input's field of view in degrees of visual angle (``model.visual_degrees``).
        mean, std: the per-channel normalisation of its training inputs (a number: the same on every channel).
        five_crop: classification evaluations also report the mean prediction over five crops (``eval.five_crop``).
    """

    v1_layer: str
    image_size: int
    visual_degrees: float = VISUAL_DEGREES
    mean: float | tuple[float, float, float] = NORMALISATION
    std: float | tuple[float, float, float] = NORMALISATION
    five_crop: bool = False

    def __post_init__(self) -> None:
        for name in ("mean", "std"):  # per-channel values as tuples (config data holds lists)
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint's hyperparameters (loads with ``weights_only=True``)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def of(
        cls,
        net: Any,
        architecture: Mapping[str, Any],
        visual_degrees: float = VISUAL_DEGREES,
        data: Mapping[str, Any] | None = None,
    ) -> "ScoringContract":
        """The contract a network built from ``architecture`` (``model.net``) makes: its backbone's V1 layer, its input
        size, ``visual_degrees`` and the normalisation and ``five_crop`` of its ``data`` config (defaults without)."""
        from neurov1.models.backbones import backbone_for

        data = data or {}
        return cls(
            v1_layer=backbone_for(architecture["arch"], architecture.get("backbone")).v1_layer(net),
            image_size=architecture.get("input_size", IMAGE_SIZE),
            visual_degrees=visual_degrees,
            mean=data.get("mean", NORMALISATION),
            std=data.get("std", NORMALISATION),
            five_crop=bool(data.get("five_crop", False)),
        )

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> "ScoringContract":
        return cls(**saved)

    def channel_mean(self) -> tuple[float, float, float]:
        return _per_channel(self.mean)

    def channel_std(self) -> tuple[float, float, float]:
        return _per_channel(self.std)


def _per_channel(value: float | tuple[float, ...]) -> tuple[float, float, float]:
    return (float(value),) * 3 if isinstance(value, int | float) else tuple(float(v) for v in value)
