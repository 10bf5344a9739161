"""A backbone whose forward is not the sequence of its children: a skip connection around its V1 stage.

Its children are registered head first, and the V1 stage's input also reaches the next stage through a shortcut,
so the network's own forward is the only way to its V1 activations (tests/models/test_activations.py).
"""

import torch
from torch import nn

from neurov1.models import Backbone, Place


def unit(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()
    )


class SkipNet(nn.Module):
    """stem (3x3/2 conv, 3x3/2 max pool) -> layer1 (two conv units, the V1 stage) -> layer2, with layer2 fed
    layer1's output plus a 1x1 shortcut of layer1's input."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes))
        self.layer2 = unit(width, 2 * width, stride=2)
        self.shortcut = nn.Conv2d(width, width, 1)
        self.layer1 = nn.Sequential(unit(width, width), unit(width, width))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.stem = unit(3, width, stride=2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.stem(images))
        return self.head(self.layer2(self.layer1(x) + self.shortcut(x)))


class SkipBackbone(Backbone):
    name = "skip"
    archs = ("skipnet",)

    def build(self, arch: str, num_classes: int) -> nn.Module:
        return SkipNet(num_classes)

    def places(self, net: nn.Module, site: str, input_size: int) -> list[Place]:
        stem, v1 = (input_size + 1) // 2, (input_size + 3) // 4
        channels = net.shortcut.out_channels
        if site == "stem_pool":
            return [Place(net, "maxpool", {"channels": channels, "input_size": stem, "output_size": v1})]
        if site == "v1_conv":
            return [Place(block, "0", {"channels": channels, "input_size": v1}) for block in net.layer1]
        if site == "v1_block_output":
            return [Place(net.layer1, str(i), {"channels": channels, "input_size": v1}) for i in range(2)]
        return []

    def v1_layer(self, net: nn.Module) -> str:
        return "layer1"

    def scan_layers(self, net: nn.Module) -> list[str]:
        return ["layer1.0", "layer1", "layer2"]

    def classifier(self, net: nn.Module) -> str:
        return "head.2"

    def v1_channels(self, arch: str) -> int:
        return 16
