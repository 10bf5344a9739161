"""Backbones as adapters: how a network family offers the component sites, its V1 stage and its layers.

An adapter (:class:`Backbone`) builds the plain network of an architecture (torchvision's, names unchanged) and
answers four questions about it: where each site of :mod:`neurov1.models.sites` is, with its geometry at a given
input size (:meth:`Backbone.places`); which module's output is the artificial V1 (:meth:`Backbone.v1_layer`);
which layers an Appendix-B-style scan scores (:meth:`Backbone.scan_layers`); and which layer is the classifier head
(:meth:`Backbone.classifier`, for fine-tuning).

Built in: :class:`ResNetBackbone` (resnet18/34/50/101) and :class:`VGGBackbone` (vgg11/13/16/19_bn). Another
family is a subclass named by ``model.net.backbone=<package.Class>`` (docs/how-to/add-a-backbone.md).
"""

from dataclasses import dataclass
from typing import Any

import torchvision
from torch import nn

from neurov1.errors import ConfigError
from neurov1.models.sites import SITES
from neurov1.utils.instantiate import locate


@dataclass
class Place:
    """One place of a site: the module ``getattr(parent, attribute)`` and the geometry there."""

    parent: nn.Module
    attribute: str
    geometry: dict[str, Any]


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel_size) // stride + 1


class Backbone:
    """The interface of a network family (subclass it for another family)."""

    name = ""
    archs: tuple[str, ...] = ()

    def build(self, arch: str, num_classes: int) -> nn.Module:
        """The plain network (no component) with ``num_classes`` outputs."""
        raise NotImplementedError

    def places(self, net: nn.Module, site: str, input_size: int) -> list[Place]:
        """Where ``site`` is in ``net`` for ``input_size`` px inputs; [] when the family has no such place."""
        raise NotImplementedError

    def v1_layer(self, net: nn.Module) -> str:
        """The name of the module whose output is the artificial V1 (committed to V1 when scoring)."""
        raise NotImplementedError

    def scan_layers(self, net: nn.Module) -> list[str]:
        """The layers an Appendix-B-style scan scores, in network order."""
        raise NotImplementedError

    def classifier(self, net: nn.Module) -> str:
        """The name of the output layer (the head that head-only fine-tuning trains and a new task replaces)."""
        raise NotImplementedError

    def v1_channels(self, arch: str) -> int:
        """The channels of the V1 layer's output, known before building (for early config checks)."""
        raise NotImplementedError

    def check_input_size(self, input_size: int) -> None:
        """ConfigError (``model.net.input_size``) for inputs too small for the family."""


class ResNetBackbone(Backbone):
    """torchvision's ResNets. V1 is ``layer1``: the stage after the stem (conv1 7x7/2, maxpool 3x3/2), a quarter of
    the input resolution (16x16 at 64 px); the stem's pooling is ``maxpool``. This is the paper's placement."""

    name = "resnet"
    archs = ("resnet18", "resnet34", "resnet50", "resnet101")

    def build(self, arch: str, num_classes: int) -> nn.Module:
        return getattr(torchvision.models, arch)(num_classes=num_classes)

    @staticmethod
    def _sizes(input_size: int) -> tuple[int, int]:
        after_conv1 = conv_output_size(input_size, 7, 2, 3)
        return after_conv1, conv_output_size(after_conv1, 3, 2, 1)

    def check_input_size(self, input_size: int) -> None:
        if self._sizes(input_size)[1] < 2:
            raise ConfigError(
                f"model.net.input_size={input_size} is too small for a ResNet stem; use >= 8 (paper: 64)."
            )

    def places(self, net: nn.Module, site: str, input_size: int) -> list[Place]:
        stem, v1 = self._sizes(input_size)
        blocks = list(net.layer1)
        spatial = ("conv2",) if isinstance(blocks[0], torchvision.models.resnet.Bottleneck) else ("conv1", "conv2")
        if site == "stem_conv":
            geometry = {"in_channels": 3, "out_channels": net.conv1.out_channels, "stride": 2}
            return [Place(net, "conv1", {**geometry, "input_size": input_size, "output_size": stem})]
        if site == "stem_pool":
            geometry = {"channels": net.conv1.out_channels, "input_size": stem, "output_size": v1}
            return [Place(net, "maxpool", geometry)]
        if site == "v1_conv":
            return [
                Place(block, name, {"channels": getattr(block, name).out_channels, "input_size": v1})
                for block in blocks
                for name in spatial
            ]
        if site == "v1_last_conv":
            conv = blocks[-1].conv2
            geometry = {"in_channels": conv.in_channels, "out_channels": conv.out_channels, "stride": 1}
            return [Place(blocks[-1], "conv2", {**geometry, "input_size": v1})]
        if site == "v1_block_output":
            last = blocks[-1]
            channels = last.bn3.num_features if hasattr(last, "bn3") else last.bn2.num_features
            return [Place(net.layer1, str(i), {"channels": channels, "input_size": v1}) for i in range(len(blocks))]
        return []

    def v1_layer(self, net: nn.Module) -> str:
        return "layer1"

    def scan_layers(self, net: nn.Module) -> list[str]:
        """Every block output and each stage's downsampling layer (paper Appendix B: 20 layers of ResNet-50)."""
        names = [name for name, _ in net.named_modules()]
        blocks = [n for n in names if n.startswith("layer") and n.count(".") == 1]
        downsampling = [n for n in names if n.startswith("layer") and n.endswith(".0.downsample")]
        return sorted(blocks + downsampling, key=names.index)

    def classifier(self, net: nn.Module) -> str:
        return "fc"

    def v1_channels(self, arch: str) -> int:
        return 64 if arch in ("resnet18", "resnet34") else 256  # 64 x the block expansion (1 or 4)


class VGGBackbone(Backbone):
    """torchvision's VGG-BN. V1 is the third convolution block: after the second max pooling, at a quarter of the
    input resolution like ResNet's layer1 (16x16 at 64 px), so stimuli are sampled on the same grid and the stem's
    pooling (the second max pool, 32 -> 16 at 64 px) has the geometry of ResNet's ``maxpool`` that the polar
    transform replaces. Its blocks are the conv-BN-ReLU units; the V1 layer is the block's last ReLU. The locally
    connected layer replacing its last convolution has 256 x 256 x 9 weights at each of the 16 x 16 places (151 M),
    as at any VGG stage (the channels double where the resolution halves)."""

    name = "vgg"
    archs = ("vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")
    V1_BLOCK = 2  # the third block (0-based)

    def build(self, arch: str, num_classes: int) -> nn.Module:
        return getattr(torchvision.models, arch)(num_classes=num_classes)

    CONFIGS = {"vgg11_bn": "A", "vgg13_bn": "B", "vgg16_bn": "D", "vgg19_bn": "E"}  # torchvision's cfgs

    @staticmethod
    def _blocks(net: nn.Module) -> list[dict[str, list[int]]]:
        """The convolution blocks of ``net.features``: indices of their convs and ReLUs, and of the pool after each.

        Read from torchvision's layer configuration of the architecture (conv-BN-ReLU per number, a pool per "M"),
        so components that replace a pool or a conv do not move the boundaries.
        """
        letter = next(v for k, v in VGGBackbone.CONFIGS.items() if len(net.features) == VGGBackbone._length(v))
        blocks, current, index = [], {"convs": [], "relus": []}, 0
        for entry in torchvision.models.vgg.cfgs[letter]:
            if entry == "M":
                blocks.append({**current, "pool": [index]})
                current, index = {"convs": [], "relus": []}, index + 1
            else:
                current["convs"].append(index)
                current["relus"].append(index + 2)
                index += 3
        return blocks

    @staticmethod
    def _length(letter: str) -> int:
        return sum(1 if entry == "M" else 3 for entry in torchvision.models.vgg.cfgs[letter])

    def check_input_size(self, input_size: int) -> None:
        if input_size < 32:
            raise ConfigError(f"model.net.input_size={input_size} is too small for VGG (5 poolings); use >= 32.")

    def places(self, net: nn.Module, site: str, input_size: int) -> list[Place]:
        features, blocks = net.features, self._blocks(net)
        v1, v1_size = blocks[self.V1_BLOCK], input_size // 4
        if site == "stem_conv":
            geometry = {"in_channels": 3, "out_channels": features[0].out_channels, "stride": 1}
            return [Place(features, "0", {**geometry, "input_size": input_size, "output_size": input_size})]
        if site == "stem_pool":
            channels = features[blocks[self.V1_BLOCK - 1]["convs"][-1]].out_channels
            geometry = {"channels": channels, "input_size": 2 * v1_size, "output_size": v1_size}
            return [Place(features, str(blocks[self.V1_BLOCK - 1]["pool"][0]), geometry)]
        if site == "v1_conv":
            return [
                Place(features, str(i), {"channels": features[i].out_channels, "input_size": v1_size})
                for i in v1["convs"]
            ]
        if site == "v1_last_conv":
            conv = features[v1["convs"][-1]]
            geometry = {"in_channels": conv.in_channels, "out_channels": conv.out_channels, "stride": 1}
            return [Place(features, str(v1["convs"][-1]), {**geometry, "input_size": v1_size})]
        if site == "v1_block_output":
            channels = features[v1["convs"][-1]].out_channels
            return [Place(features, str(i), {"channels": channels, "input_size": v1_size}) for i in v1["relus"]]
        return []

    def v1_layer(self, net: nn.Module) -> str:
        return f"features.{self._blocks(net)[self.V1_BLOCK]['relus'][-1]}"

    def scan_layers(self, net: nn.Module) -> list[str]:
        """Every conv unit's ReLU and every pooling of ``features``, in order."""
        return [f"features.{i}" for block in self._blocks(net) for i in (*block["relus"], *block["pool"])]

    def classifier(self, net: nn.Module) -> str:
        return f"classifier.{len(net.classifier) - 1}"

    def v1_channels(self, arch: str) -> int:
        entries = torchvision.models.vgg.cfgs[self.CONFIGS[arch]]
        pools = [i for i, entry in enumerate(entries) if entry == "M"]
        return entries[pools[self.V1_BLOCK] - 1]  # the last convolution of the V1 block


BUILT_IN: tuple[Backbone, ...] = (ResNetBackbone(), VGGBackbone())


def backbone_for(arch: str, backbone: str | None = None) -> Backbone:
    """The adapter for ``arch``: ``backbone`` (a dotted class path, ``model.net.backbone``), else a built-in one."""
    if backbone:
        adapter = locate(backbone, "model.net.backbone")()
        if not isinstance(adapter, Backbone):
            raise ConfigError(f"model.net.backbone: {backbone} is not a neurov1.models.Backbone subclass.")
    else:
        adapter = next((candidate for candidate in BUILT_IN if arch in candidate.archs), None)
    if adapter is None or arch not in adapter.archs:
        known = [a for candidate in ([adapter] if backbone else BUILT_IN) for a in candidate.archs]
        raise ConfigError(f"model.net.arch: unknown architecture {arch!r}; choose one of {', '.join(known)}.")
    return adapter


def offered_sites(adapter: Backbone, net: nn.Module, input_size: int) -> list[str]:
    return [site for site in SITES if adapter.places(net, site, input_size)]
