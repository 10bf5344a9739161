"""Data modules: ImageNet and Tiny-ImageNet from image folders, and download-free demo data."""

from neurov1.data.demo import DemoDataModule, demo_images
from neurov1.data.imagenet import ImageNetDataModule
from neurov1.data.stream import ImageNetStreamDataModule
from neurov1.data.tiny_imagenet import TinyImageNetDataModule
from neurov1.data.transforms import imagenet_train_transform, imagenet_val_transform

__all__ = [
    "DemoDataModule",
    "ImageNetDataModule",
    "ImageNetStreamDataModule",
    "TinyImageNetDataModule",
    "demo_images",
    "imagenet_train_transform",
    "imagenet_val_transform",
]
