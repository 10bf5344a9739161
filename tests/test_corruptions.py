"""The Tiny-ImageNet-C corruptions (neurov1.data.image_corruptions) and the command that writes corrupted copies of
an image folder (python -m neurov1.corrupt)."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurov1 import corrupt as corrupt_cli
from neurov1.data import corrupted_folder, image_corruptions
from neurov1.data.demo import demo_images
from neurov1.data.image_corruptions import CORRUPTION_GROUPS, CORRUPTIONS, SEVERITIES, corrupt
from neurov1.errors import OutputWriteError

RANDOM_CORRUPTIONS = {
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "snow",
    "frost",
    "fog",
    "elastic_transform",
}
# The published parameters of these two are not monotonic in PSNR (also with the reference code's semantics): their
# two components move in opposite directions, so each component is tested on its own below.
PSNR_NOT_MONOTONIC = {"glass_blur", "elastic_transform"}


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Six demo photographs resized to 64x64."""
    resized = [Image.fromarray(photo).resize((64, 64), Image.Resampling.BICUBIC) for photo in demo_images().values()]
    return [np.asarray(photo) for photo in resized[:6]]


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    mse = np.mean((image.astype(float) - reference.astype(float)) ** 2)
    return float(10 * np.log10(255**2 / mse)) if mse else float("inf")


def mean_psnr_per_severity(photos: list[np.ndarray], name: str) -> list[float]:
    """Mean PSNR to the clean photos per severity; each photo gets the same random stream at every severity."""
    return [
        float(
            np.mean(
                [
                    psnr(corrupt(photo, name, severity, np.random.default_rng(i)), photo)
                    for i, photo in enumerate(photos)
                ]
            )
        )
        for severity in SEVERITIES
    ]


def strictly_decreasing(values: list[float]) -> bool:
    return all(earlier > later for earlier, later in zip(values[:-1], values[1:], strict=True))


def test_names_and_groups():
    assert len(CORRUPTIONS) == 15 == len(set(CORRUPTIONS)) == len(image_corruptions.CORRUPTION_FUNCTIONS)
    assert CORRUPTIONS == tuple(name for group in CORRUPTION_GROUPS.values() for name in group)
    assert CORRUPTION_GROUPS["weather"][-1] == "brightness" and CORRUPTION_GROUPS["digital"][0] == "contrast"
    assert SEVERITIES == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("name", [name for name in CORRUPTIONS if name not in PSNR_NOT_MONOTONIC])
def test_distortion_grows_with_severity(photos, name):
    values = mean_psnr_per_severity(photos, name)
    assert strictly_decreasing(values), values
    assert values[0] < 35, f"severity 1 barely changes the image: {values}"


def test_glass_blur_components_grow_with_severity(photos, monkeypatch):
    """Severity 1 scrambles an unblurred image; severity 2's blur smooths that scramble, so its PSNR is higher."""
    published = image_corruptions.GLASS_BLUR
    monkeypatch.setattr(image_corruptions, "GLASS_BLUR", tuple((sigma, delta, 0) for sigma, delta, _ in published))
    blur = mean_psnr_per_severity(photos, "glass_blur")
    assert strictly_decreasing(blur[1:]), blur
    monkeypatch.setattr(image_corruptions, "GLASS_BLUR", tuple((0, delta, passes) for _, delta, passes in published))
    scramble = mean_psnr_per_severity(photos, "glass_blur")
    # (max delta, passes): (1, 1) twice, then (1, 2), (2, 1), (2, 2).
    assert scramble[0] == scramble[1] and strictly_decreasing(scramble[1:]), scramble
    monkeypatch.setattr(image_corruptions, "GLASS_BLUR", published)
    full = mean_psnr_per_severity(photos, "glass_blur")
    assert max(full) < 35 and full[4] == min(full), full


def test_elastic_transform_components_move_in_opposite_directions(photos, monkeypatch):
    """The published affine jitter shrinks with severity (5.1 -> 1.3 px) while the elastic displacement grows."""
    published = image_corruptions.ELASTIC_TRANSFORM
    monkeypatch.setattr(image_corruptions, "ELASTIC_TRANSFORM", tuple((a, s, 0.0) for a, s, _ in published))
    elastic = mean_psnr_per_severity(photos, "elastic_transform")
    assert elastic[0] == float("inf") and strictly_decreasing(elastic), elastic
    monkeypatch.setattr(image_corruptions, "ELASTIC_TRANSFORM", tuple((0.0, s, jitter) for _, s, jitter in published))
    affine = mean_psnr_per_severity(photos, "elastic_transform")
    assert affine[0] < affine[1] == affine[2] < affine[3] < affine[4], affine
    monkeypatch.setattr(image_corruptions, "ELASTIC_TRANSFORM", published)
    assert max(mean_psnr_per_severity(photos, "elastic_transform")) < 35


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_seeded_output_keeps_dtype_and_shape(photos, name):
    image = photos[0][:48, :40].copy()
    original = image.copy()
    first = corrupt(image, name, 3, np.random.default_rng(7))
    assert first.dtype == np.uint8 and first.shape == image.shape
    np.testing.assert_array_equal(image, original)
    np.testing.assert_array_equal(first, corrupt(image, name, 3, np.random.default_rng(7)))
    other_seed = corrupt(image, name, 3, np.random.default_rng(8))
    assert np.array_equal(first, other_seed) != (name in RANDOM_CORRUPTIONS)


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 7, 3), (37, 100, 3)])
def test_any_image_size(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for name in CORRUPTIONS:
        assert corrupt(image, name, 5, np.random.default_rng(0)).shape == shape


@pytest.mark.parametrize(
    ("name", "severity", "message"),
    [
        ("gaussian", 1, r"unknown corruption 'gaussian'; valid corruptions: gaussian_noise, shot_noise, .*jpeg"),
        ("fog", 0, r"severity 0 is invalid; valid severities: 1, 2, 3, 4, 5"),
        ("fog", 6, r"severity 6"),
        ("fog", 2.0, r"severity 2.0"),
        ("fog", True, r"severity True"),
    ],
)
def test_invalid_name_or_severity(photos, name, severity, message):
    with pytest.raises(ValueError, match=message):
        corrupt(photos[0], name, severity, np.random.default_rng(0))


def test_invalid_image():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        corrupt(np.zeros((8, 8, 3)), "fog", 1, np.random.default_rng(0))


# --- python -m neurov1.corrupt ---


@pytest.fixture
def source(tmp_path) -> Path:
    """Two classes of two images each: a PNG, a grayscale JPEG, an RGBA PNG and a 64x64 JPEG."""
    rng = np.random.default_rng(0)
    root = tmp_path / "src"
    files = {"n01/a.png": (70, 90, 3), "n01/b.JPEG": (80, 60), "n02/c.png": (64, 64, 4), "n02/d.jpg": (64, 64, 3)}
    for name, shape in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / name)
    return root


def jpeg_files(root: Path) -> dict[Path, bytes]:
    return {path.relative_to(root): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_cli_layout_resume_and_worker_independence(source, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    summary = corrupt_cli.main([str(source), str(first), "--severities", "1", "3", "--workers", "2"])
    images = [("n01", "a"), ("n01", "b"), ("n02", "c"), ("n02", "d")]
    expected = {Path(name, str(s), cls, f"{stem}.JPEG") for name in CORRUPTIONS for s in (1, 3) for cls, stem in images}
    written = jpeg_files(first)
    assert set(written) == expected and len(written) == 15 * 2 * 2 * 2
    assert summary.written == 120 and summary.skipped == 0
    assert "Wrote 120 images" in capsys.readouterr().out
    with Image.open(first / "fog/3/n01/b.JPEG") as picture:
        assert (picture.format, picture.mode, picture.size) == ("JPEG", "RGB", (64, 64))

    modified = {path: (first / path).stat().st_mtime_ns for path in written}
    rerun = corrupt_cli.main([str(source), str(first), "--severities", "1", "3", "--workers", "1"])
    assert (rerun.written, rerun.skipped) == (0, 120)
    assert modified == {path: (first / path).stat().st_mtime_ns for path in written}

    corrupt_cli.main([str(source), str(second), "--severities", "3", "1", "--workers", "1"])
    assert jpeg_files(second) == written


def test_cli_resumes_a_partial_run(source, tmp_path):
    out = tmp_path / "out"
    corrupt_cli.main([str(source), str(out), "--corruptions", "noise", "--severities", "2", "--workers", "1"])
    complete = jpeg_files(out)
    (out / "shot_noise/2/n02/c.JPEG").unlink()
    resumed = corrupt_cli.main([str(source), str(out), "--corruptions", "noise", "--severities", "2", "--workers", "1"])
    assert (resumed.written, resumed.skipped) == (1, 11)
    assert jpeg_files(out) == complete


def test_cli_demo_with_clean_images(tmp_path):
    out = tmp_path / "demo"
    arguments = ["--demo", str(out), "--limit", "1", "--corruptions", "contrast", "--severities", "5", "--with-clean"]
    summary = corrupt_cli.main([*arguments, "--workers", "1"])
    names = [
        "astronaut",
        "brick",
        "camera",
        "chelsea",
        "coffee",
        "coins",
        "grass",
        "gravel",
        "motorcycle_left",
        "rocket",
    ]
    expected = {Path(folder, name, f"{name}_000.JPEG") for name in names for folder in ("clean", "contrast/5")}
    assert set(jpeg_files(out)) == expected and summary.written == 20


def test_cli_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputWriteError, match="disk full"):
        corrupted_folder.write_jpeg_atomic(tmp_path / "x" / "a.JPEG", np.zeros((4, 4, 3), np.uint8))
    assert list((tmp_path / "x").iterdir()) == []


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (None, "source folder .* does not exist"),
        ({}, "has no class folders"),
        ({"n01/readme.txt": b"no images"}, "hold no .jpeg/.jpg/.png images"),
        ({"n01/a.jpg": b"not a jpeg"}, r"cannot read .*a\.jpg"),
    ],
)
def test_cli_source_errors(tmp_path, layout, message):
    source = tmp_path / "src"
    for name, content in (layout or {}).items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(content)
    if layout is not None:
        source.mkdir(exist_ok=True)
    with pytest.raises(SystemExit, match=message):
        corrupt_cli.main([str(source), str(tmp_path / "out"), "--workers", "1"])
    assert (tmp_path / "out").exists() == ("cannot read" in message)  # checked before any output is made


def test_cli_refuses_unwritable_output_before_work(source, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match="cannot write to the output folder"):
        corrupt_cli.main([str(source), str(blocker / "out")])


@pytest.mark.parametrize("arguments", [[], ["src", "dst", "--demo"], ["src", "dst", "--severities", "6"]])
def test_cli_argument_errors(arguments):
    with pytest.raises(SystemExit) as raised:
        corrupt_cli.main(arguments)
    assert raised.value.code == 2
