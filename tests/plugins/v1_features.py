"""neurov1 from another project: a ResNet-18 with two components, its V1 read with torchvision's feature extractor."""

import torch
from torchvision.models.feature_extraction import create_feature_extractor

from neurov1.models import backbone_for, build_network

net = build_network("resnet18", num_classes=10, input_size=64, components={"center_surround": None, "tuned_norm": None})
v1_layer = backbone_for("resnet18").v1_layer(net)  # "layer1", the artificial V1
extractor = create_feature_extractor(net.eval(), {v1_layer: "v1"})
with torch.no_grad():
    v1 = extractor(torch.randn(2, 3, 64, 64))["v1"]
print(v1.shape)  # torch.Size([2, 64, 16, 16])
