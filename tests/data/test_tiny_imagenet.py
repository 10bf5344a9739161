"""TinyImageNetDataModule on a tiny fake Tiny-ImageNet tree."""

from pathlib import Path

import pytest
import torch
from fake_images import CLASS_COLOURS, module_factory, write_image

from neurov1.data import TinyImageNetDataModule
from neurov1.errors import ConfigError

VAL_WNIDS = ["n03", "n01", "n02", "n01", "n03", "n02"]


def make_tiny_imagenet(root: Path, train_per_class: int = 3) -> Path:
    """Real layout: train/<wnid>/images/, <wnid>_boxes.txt, val/images/ + val_annotations.txt, wnids.txt."""
    for wnid, colour in CLASS_COLOURS.items():
        for index in range(train_per_class):
            write_image(root / "train" / wnid / "images" / f"{wnid}_{index}.JPEG", colour)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t63\t63\n")
    lines = []
    for index, wnid in enumerate(VAL_WNIDS):
        write_image(root / "val" / "images" / f"val_{index}.JPEG", CLASS_COLOURS[wnid])
        lines.append(f"val_{index}.JPEG\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    (root / "wnids.txt").write_text("\n".join(reversed(CLASS_COLOURS)) + "\n")
    return root


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    return make_tiny_imagenet(tmp_path / "tiny-imagenet-200")


data_module = module_factory(TinyImageNetDataModule, batch_size=3)


def edit_annotation_line(root: Path, line_number: int, new_line: str) -> Path:
    annotations = root / "val" / "val_annotations.txt"
    lines = annotations.read_text().splitlines()
    lines[line_number - 1] = new_line
    annotations.write_text("\n".join(lines) + "\n")
    return annotations


def test_classes_sorted_and_val_labels_from_annotations(tiny_root):
    module = data_module(tiny_root)
    module.setup("fit")
    assert module.class_names == ["n01", "n02", "n03"]
    assert module.num_classes == 3
    assert len(module.train_dataset) == 9
    val_batches = list(module.val_dataloader())
    images = torch.cat([b[0] for b in val_batches])
    labels = torch.cat([b[1] for b in val_batches])
    assert labels.tolist() == [module.class_names.index(wnid) for wnid in VAL_WNIDS]
    assert torch.equal(images.mean(dim=(2, 3)).argmax(dim=1), labels)


def test_train_batches(tiny_root):
    module = data_module(tiny_root)
    module.setup("fit")
    batches = list(module.train_dataloader())
    assert len(batches) == 3
    images, labels = batches[0]
    assert images.shape == (3, 3, 64, 64)
    assert images.min() >= -1 and images.max() <= 1
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == [0] * 3 + [1] * 3 + [2] * 3


def test_other_image_size_is_resized(tiny_root):
    module = data_module(tiny_root, image_size=32)
    module.setup("fit")
    assert module.train_dataset[0][0].shape == (3, 32, 32)
    assert module.val_dataset[0][0].shape == (3, 32, 32)


def test_malformed_annotation_reports_line_number(tiny_root):
    annotations = edit_annotation_line(tiny_root, 3, "val_2.JPEG n02 0 0 63 63")
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(tiny_root).validate()
    assert f"{annotations} line 3" in str(info.value)
    assert "malformed" in str(info.value)


def test_annotation_with_unknown_wnid(tiny_root):
    annotations = edit_annotation_line(tiny_root, 2, "val_1.JPEG\tn99\t0\t0\t63\t63")
    with pytest.raises(ConfigError, match="n99") as info:
        data_module(tiny_root).validate()
    assert f"{annotations} line 2" in str(info.value)


def test_annotation_naming_missing_file(tiny_root):
    edit_annotation_line(tiny_root, 4, "val_404.JPEG\tn01\t0\t0\t63\t63")
    with pytest.raises(ConfigError, match="line 4") as info:
        data_module(tiny_root).validate()
    assert str(tiny_root / "val" / "images" / "val_404.JPEG") in str(info.value)


def test_missing_annotations_file(tiny_root):
    (tiny_root / "val" / "val_annotations.txt").unlink()
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(tiny_root).validate()
    assert str(tiny_root / "val" / "val_annotations.txt") in str(info.value)


def test_missing_root_and_missing_val(tmp_path, tiny_root):
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(tmp_path / "nowhere").validate()
    assert str(tmp_path / "nowhere") in str(info.value)
    for path in (tiny_root / "val" / "images").iterdir():
        path.unlink()
    (tiny_root / "val" / "images").rmdir()
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(tiny_root).validate()
    assert str(tiny_root / "val" / "images") in str(info.value)


def test_wnids_file_must_match_train_folders(tiny_root):
    (tiny_root / "wnids.txt").write_text("n01\nn02\nn03\nn04\n")
    with pytest.raises(ConfigError, match="n04") as info:
        data_module(tiny_root).validate()
    assert str(tiny_root / "wnids.txt") in str(info.value)


def test_train_class_without_images(tiny_root):
    (tiny_root / "train" / "n04" / "images").mkdir(parents=True)
    (tiny_root / "wnids.txt").unlink()
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(tiny_root).validate()
    assert str(tiny_root / "train" / "n04") in str(info.value)


def test_unreadable_val_image(tiny_root):
    bad = tiny_root / "val" / "images" / "val_0.JPEG"
    bad.write_bytes(b"garbage" * 20)
    with pytest.raises(ConfigError, match="data.verify") as info:
        data_module(tiny_root, verify="sample").validate()
    assert str(bad) in str(info.value)
    module = data_module(tiny_root, verify="none")
    module.setup("validate")
    with pytest.raises(ConfigError, match="data.root") as info:
        module.val_dataset[0]
    assert str(bad) in str(info.value)
