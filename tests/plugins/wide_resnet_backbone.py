"""A backbone adapter that lives outside neurov1: torchvision's ResNeXt and Wide ResNet.

Their bottlenecks are grouped or wider, but the layout is ResNet's, so ResNet's adapter answers every question
(sites, V1 stage, layer scan, head). A family with another layout implements the methods of
neurov1.models.Backbone, as neurov1.models.VGGBackbone does.
"""

from neurov1.models import ResNetBackbone


class WideResNetBackbone(ResNetBackbone):
    name = "wide_resnet"
    archs = ("resnext50_32x4d", "wide_resnet50_2")
