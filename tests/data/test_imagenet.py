"""ImageNetDataModule on a tiny fake ImageNet folder tree."""

from pathlib import Path

import pytest
import torch
from fake_images import CLASS_COLOURS, module_factory, write_image

from neurov1.data import ImageNetDataModule
from neurov1.errors import ConfigError

SIZE = (48, 40)  # full-size ImageNet images are not square


def make_imagenet(root: Path, train_per_class: int = 4, val_per_class: int = 2) -> Path:
    """root/{train,val}/<wnid>/ with one flat colour per class; created in reverse order to test sorting."""
    for wnid, colour in reversed(CLASS_COLOURS.items()):
        for index in range(train_per_class):
            write_image(root / "train" / wnid / f"{wnid}_{index}.JPEG", colour, SIZE)
        for index in range(val_per_class):
            write_image(root / "val" / wnid / f"ILSVRC2012_val_{wnid}_{index}.JPEG", colour, SIZE)
    return root


@pytest.fixture
def imagenet_root(tmp_path: Path) -> Path:
    return make_imagenet(tmp_path / "imagenet")


data_module = module_factory(ImageNetDataModule, batch_size=4)


def test_classes_are_sorted_wnids_and_images_are_counted(imagenet_root):
    module = data_module(imagenet_root)
    assert module.validate() is None
    assert module.validate() is None
    assert module.class_names == ["n01", "n02", "n03"]
    assert module.num_classes == 3
    module.setup("fit")
    assert len(module.train_dataset) == 12
    assert len(module.val_dataset) == 6


def test_extensions_are_case_insensitive_and_other_files_ignored(imagenet_root):
    write_image(imagenet_root / "train" / "n01" / "extra.jpg", CLASS_COLOURS["n01"], SIZE)
    write_image(imagenet_root / "train" / "n01" / "extra.png", CLASS_COLOURS["n01"], SIZE)
    (imagenet_root / "train" / "n01" / "notes.txt").write_text("not an image")
    module = data_module(imagenet_root)
    module.setup("fit")
    assert len(module.train_dataset) == 14


@pytest.mark.parametrize("decode", ["fast", "exact"])
def test_batches_have_paper_shapes_and_labels_match_folders(imagenet_root, decode):
    module = data_module(imagenet_root, decode=decode)
    module.setup("fit")
    train_batches = list(module.train_dataloader())
    assert len(train_batches) == 3
    images, labels = train_batches[0]
    # fast: uint8 pixels out of the workers, converted and normalised on the device; exact: the paper's tensors
    assert (images.shape, images.dtype) == (
        ((4, 64, 64, 3), torch.uint8) if decode == "fast" else ((4, 3, 64, 64), torch.float32)
    )
    assert module.device_transform(images).shape == (4, 3, 64, 64)
    assert labels.dtype == torch.int64
    assert sorted(torch.cat([b[1] for b in train_batches]).tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    val_batches = list(module.val_dataloader())
    images = module.device_transform(torch.cat([b[0] for b in val_batches]))
    labels = torch.cat([b[1] for b in val_batches])
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert images.min() >= -1 and images.max() <= 1
    dominant_channel = images.mean(dim=(2, 3)).argmax(dim=1)
    assert torch.equal(dominant_channel, labels)


def test_loader_settings(imagenet_root):
    module = data_module(imagenet_root, num_workers=0)
    module.setup("fit")
    assert not module.train_dataloader().persistent_workers
    assert module.train_dataloader().drop_last
    assert not module.val_dataloader().drop_last


def test_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(missing).validate()
    assert str(missing) in str(info.value)
    assert "train/ and val/" in str(info.value)


def test_missing_val(imagenet_root):
    for path in sorted((imagenet_root / "val").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (imagenet_root / "val").rmdir()
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(imagenet_root).validate()
    assert str(imagenet_root / "val") in str(info.value)


def test_flat_val_is_explained(tmp_path):
    root = tmp_path / "imagenet"
    make_imagenet(root, val_per_class=0)
    for index in range(3):
        write_image(root / "val" / f"ILSVRC2012_val_{index:08d}.JPEG", (0, 0, 0), SIZE)
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(root).validate()
    message = str(info.value)
    assert str(root / "val") in message
    assert "re-foldered" in message and "valprep.sh" in message


def test_split_without_class_folders(tmp_path):
    root = tmp_path / "imagenet"
    (root / "train").mkdir(parents=True)
    (root / "val").mkdir()
    with pytest.raises(ConfigError, match="no class folders") as info:
        data_module(root).validate()
    assert str(root / "train") in str(info.value)


def test_empty_class_folder(imagenet_root):
    (imagenet_root / "train" / "n04").mkdir()
    (imagenet_root / "val" / "n04").mkdir()
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(imagenet_root).validate()
    assert str(imagenet_root / "train" / "n04") in str(info.value)


def test_mismatched_val_classes(imagenet_root):
    write_image(imagenet_root / "val" / "n09" / "x.JPEG", (0, 0, 0), SIZE)
    with pytest.raises(ConfigError, match="data.root") as info:
        data_module(imagenet_root).validate()
    assert str(imagenet_root / "val") in str(info.value)
    assert "n09" in str(info.value)


def replace_class_with_garbage(root: Path, wnid: str = "n02") -> Path:
    for path in (root / "train" / wnid).iterdir():
        path.unlink()
    bad = root / "train" / wnid / "broken.JPEG"
    bad.write_bytes(b"this is not a JPEG" * 10)
    return bad


def test_unreadable_image_caught_by_sample_verification(imagenet_root):
    bad = replace_class_with_garbage(imagenet_root)
    with pytest.raises(ConfigError, match="data.verify") as info:
        data_module(imagenet_root, verify="sample").validate()
    assert str(bad) in str(info.value)
    assert "data.root" in str(info.value)


def test_unreadable_image_caught_by_full_verification(imagenet_root):
    bad = imagenet_root / "val" / "n03" / "zz_broken.JPEG"
    bad.write_bytes(b"\xff\xd8garbage")
    data_module(imagenet_root, verify="sample").validate()
    data_module(imagenet_root, verify="all").validate()  # the cheap checks pass: the header is readable
    with pytest.raises(ConfigError, match="data.verify") as info:
        data_module(imagenet_root, verify="all", verify_cache=str(imagenet_root.parent / "cache")).verify_all()
    assert str(bad) in str(info.value)


def test_unreadable_image_unverified_fails_in_getitem_with_its_path(imagenet_root):
    bad = replace_class_with_garbage(imagenet_root)
    module = data_module(imagenet_root, verify="none")
    module.setup("fit")
    bad_index = [module.train_dataset.path(i) for i in range(len(module.train_dataset))].index(str(bad))
    with pytest.raises(ConfigError, match="data.root") as info:
        module.train_dataset[bad_index]
    assert str(bad) in str(info.value)
    assert "data.verify" in str(info.value)


def test_unreadable_image_in_worker_keeps_path_and_type(imagenet_root):
    bad = replace_class_with_garbage(imagenet_root)
    module = data_module(imagenet_root, verify="none")
    module.setup("fit")
    batches = iter(torch.utils.data.DataLoader(module.train_dataset, batch_size=9, num_workers=1))
    with pytest.raises(ConfigError, match="data.root") as info:
        next(batches)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"verify": "some"}, "data.verify"),
        ({"batch_size": 0}, "data.batch_size"),
        ({"num_workers": -1}, "data.num_workers"),
        ({"val_resize": 128}, "data.val_resize"),
        ({"mean": [0.5, 0.5]}, "data.mean"),
    ],
)
def test_bad_settings(imagenet_root, setting, key):
    with pytest.raises(ConfigError, match=key):
        data_module(imagenet_root, **setting).validate()


def test_batch_larger_than_train_set(imagenet_root):
    module = data_module(imagenet_root, batch_size=64)
    with pytest.raises(ConfigError, match="data.batch_size") as info:
        module.setup("fit")
    assert str(imagenet_root / "train") in str(info.value)
