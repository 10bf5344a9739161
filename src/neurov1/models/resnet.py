"""ResNets whose layer 1 (the artificial V1) carries the paper's neuro-constrained components.

Placement follows Pogoncheff et al. (2023), Sec. 3.1 and Fig. 2, for torchvision's ResNet ("v1.5"):

- ``center_surround``: a DoG convolution on a quarter of the channels after every 3x3 convolution of layer 1
  (Bottleneck: after ``conv2``, module ``center_surround2``; BasicBlock: after ``conv1`` and ``conv2``).
- ``local_rf``: the last 3x3 convolution of layer 1 (``layer1.<last>.conv2``) becomes a locally connected layer.
- ``divisive_norm`` / ``tuned_norm``: after the output ReLU of every layer-1 block (module ``normalization``).
- ``cortical_mag``: the stem max-pool (``maxpool``) becomes the polar transform, same output size.

Module names stay torchvision's (``conv1``, ``layer1.0.conv2``, ``layer1``, ``fc``), so ``layer1`` is always the
artificial V1 layer and the baseline's state dict is exactly torchvision's.
"""

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from neurov1.components import (
    CenterSurround,
    DivisiveNormalization,
    LocallyConnected2d,
    PolarTransform,
    TunedNormalization,
)
from neurov1.errors import ConfigError
from neurov1.models.components import validate_components

ARCHITECTURES: dict[str, tuple[type[nn.Module], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}


class NeuroBasicBlock(BasicBlock):
    """torchvision's BasicBlock with optional center-surround after each 3x3 conv and a post-ReLU normalization."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.center_surround1: nn.Module | None = None
        self.center_surround2: nn.Module | None = None
        self.dropout2: nn.Module | None = None
        self.normalization: nn.Module | None = None

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv1(x)
        if self.center_surround1 is not None:
            out = self.center_surround1(out)
        out = self.relu(self.bn1(out))
        if self.dropout2 is not None:
            out = self.dropout2(out)
        out = self.conv2(out)
        if self.center_surround2 is not None:
            out = self.center_surround2(out)
        out = self.relu(self.bn2(out) + identity)
        return out if self.normalization is None else self.normalization(out)


class NeuroBottleneck(Bottleneck):
    """torchvision's Bottleneck with optional center-surround after the 3x3 conv and a post-ReLU normalization."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.center_surround2: nn.Module | None = None
        self.dropout2: nn.Module | None = None
        self.normalization: nn.Module | None = None

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        if self.dropout2 is not None:
            out = self.dropout2(out)
        out = self.conv2(out)
        if self.center_surround2 is not None:
            out = self.center_surround2(out)
        out = self.relu(self.bn2(out))
        out = self.relu(self.bn3(self.conv3(out)) + identity)
        return out if self.normalization is None else self.normalization(out)


def _conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel_size) // stride + 1


def stem_sizes(input_size: int) -> tuple[int, int]:
    """Spatial sizes after ``conv1`` (7x7/2) and after ``maxpool`` (3x3/2): 64 -> (32, 16)."""
    after_conv1 = _conv_output_size(input_size, 7, 2, 3)
    return after_conv1, _conv_output_size(after_conv1, 3, 2, 1)


def build_resnet(
    arch: str = "resnet50",
    num_classes: int = 1000,
    input_size: int = 64,
    components: Mapping[str, Mapping[str, Any]] | None = None,
) -> ResNet:
    """Build a torchvision ResNet with the given components placed in layer 1 as in the paper.

    ``components`` maps component names (``center_surround``, ``local_rf``, ``divisive_norm``, ``tuned_norm``,
    ``cortical_mag``) to their parameters; it is validated (names, combinations, parameter keys) first.
    """
    components = validate_components(components or {})
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.net.arch: unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    if num_classes < 1:
        raise ValueError(f"model.net.num_classes must be >= 1, got {num_classes}")
    block, layers = ARCHITECTURES[arch]
    neuro_block = NeuroBottleneck if block is Bottleneck else NeuroBasicBlock
    model = ResNet(neuro_block, layers, num_classes=num_classes)
    after_conv1, v1_size = stem_sizes(input_size)
    if v1_size < 2:
        raise ValueError(f"model.net.input_size={input_size} is too small for a ResNet stem (need >= 8)")

    blocks = list(model.layer1)
    for name, params in components.items():
        if name == "center_surround":
            for block_module in blocks:
                for conv_name in ("conv1", "conv2") if neuro_block is NeuroBasicBlock else ("conv2",):
                    conv = getattr(block_module, conv_name)
                    setattr(
                        block_module,
                        f"center_surround{conv_name[-1]}",
                        CenterSurround(
                            conv.out_channels, fraction=params["fraction"], kernel_size=params["kernel_size"]
                        ),
                    )
        elif name == "local_rf":
            last = blocks[-1]
            kernel_size = params["kernel_size"]
            last.conv2 = LocallyConnected2d(
                last.conv2.in_channels,
                last.conv2.out_channels,
                input_size=v1_size,
                kernel_size=kernel_size,
                stride=1,
                padding=kernel_size // 2,
            )
            if params["dropout"] > 0:
                last.dropout2 = nn.Dropout2d(params["dropout"])
        elif name in ("divisive_norm", "tuned_norm"):
            for block_module in blocks:
                channels = (
                    block_module.bn2.num_features if neuro_block is NeuroBasicBlock else block_module.bn3.num_features
                )
                block_module.normalization = (
                    DivisiveNormalization(channels, kernel_size=params["kernel_size"])
                    if name == "divisive_norm"
                    else TunedNormalization(channels)
                )
        elif name == "cortical_mag":
            model.maxpool = _polar_transform(params, after_conv1, v1_size, input_size)
    return model


def _polar_transform(params: Mapping[str, Any], stem_size: int, v1_size: int, input_size: int) -> PolarTransform:
    """The stem's PolarTransform; ConfigError when its rings do not fit the stem map of this input size."""
    center = params["center"]
    try:
        return PolarTransform(
            input_size=stem_size,
            output_size=v1_size,
            radius_bins=params["radius_bins"],
            angle_bins=params["angle_bins"],
            center=None if center is None else tuple(center),
        )
    except ValueError as error:
        field = "center" if str(error).startswith("PolarTransform: center") else "radius_bins"
        key = f"model.net.components.cortical_mag.{field}"
        raise ConfigError(
            f"{key}: {error} (the stem map is {stem_size}x{stem_size} px for model.net.input_size={input_size}). "
            f"Set {key} for this size (radius_bins: edges in stem pixels, e.g. [0,1,2,3,4,6,8]) or train at "
            "model.net.input_size>=64."
        ) from None


def count_parameters(model: nn.Module) -> int:
    """Number of learnable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
