"""Fake flat-colour images and a data-module factory shared by the ImageNet and Tiny-ImageNet tests."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

CLASS_COLOURS = {"n01": (220, 20, 20), "n02": (20, 220, 20), "n03": (20, 20, 220)}


def write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> None:
    """Save a flat-colour image, PNG for a .png path and JPEG otherwise, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="PNG" if path.suffix == ".png" else "JPEG")


def module_factory(module_class: type, batch_size: int) -> Callable[..., Any]:
    """``make(root, **settings)``: module_class on root with batch_size and num_workers=0 unless overridden."""

    def make(root: Path, **settings: Any) -> Any:
        return module_class(root=str(root), **{"batch_size": batch_size, "num_workers": 0, **settings})

    return make
