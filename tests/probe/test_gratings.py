"""The probe's gratings are the images Brain-Score shows the model (PNG, place_on_screen, PIL resize)."""

import numpy as np
import pytest
import torch
from PIL import Image

from neurov1.evaluation.brainscore.environment import configure_brainscore
from neurov1.evaluation.brainscore.stimulus_sets import BLANK, grating_parameters, render_stimulus
from neurov1.evaluation.probe import electrophysiology, gratings
from neurov1.evaluation.probe.gratings import GRATING_SETS, render_gratings, screen_size, stimuli_file


def brainscore_view(name: str, row: np.ndarray, image_size: int, visual_degrees: float, tmp_path) -> np.ndarray:
    """Brain-Score's chain: the package's 672 px drawing, place_on_screen's crop or border, the model's PIL resize;
    grey levels 0..255 (first channel)."""
    configure_brainscore(tmp_path)
    from brainscore_vision.benchmark_helpers.screen import ImageConverter
    from brainscore_vision.model_helpers.activations.pytorch import torchvision_preprocess_input

    image = ImageConverter(tmp_path).apply_ratio(Image.fromarray(render_stimulus(name, row)), visual_degrees / 12)
    tensor = torchvision_preprocess_input(image_size, normalize_mean=(0.0,) * 3, normalize_std=(1.0,) * 3)(
        image.convert("RGB")
    )
    return (tensor[0, 0].numpy() * 255).round()


@pytest.mark.parametrize("image_size", [64, 224])
def test_gratings_are_brainscore_pixels_at_8_degrees(image_size, tmp_path):
    rng = np.random.default_rng(0)
    for name in GRATING_SETS:
        parameters = grating_parameters(name)
        rows = parameters[rng.choice(len(parameters), 6, replace=False)]
        ours = render_gratings(rows, image_size, 8.0).numpy()
        for row, image in zip(rows, ours, strict=True):
            np.testing.assert_array_equal(image, brainscore_view(name, row, image_size, 8.0, tmp_path), err_msg=name)


@pytest.mark.parametrize("visual_degrees", [10, 14])
def test_other_fields_of_view_are_within_one_grey_level(visual_degrees, tmp_path):
    # a crop of 560 px (10 deg) or a grey border to 784 px (14 deg): Pillow's and torch's fixed-point kernels may
    # round a few pixels differently
    parameters = grating_parameters(GRATING_SETS[3])
    rows = parameters[:: len(parameters) // 5]
    ours = render_gratings(rows, 64, visual_degrees).numpy().astype(int)
    theirs = np.stack([brainscore_view(GRATING_SETS[3], row, 64, visual_degrees, tmp_path) for row in rows])
    difference = np.abs(ours - theirs)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_screen_geometry_follows_place_on_screen():
    assert screen_size(672, 12, 8) == (448, 112)
    assert screen_size(448, 12, 8) == (299, 74)  # the blank: 298.67 px rounds to 299
    assert screen_size(672, 12, 14) == (784, -56)  # enlarged: a 56 px grey border


def test_sets_are_cached_on_disk_and_a_broken_cache_is_rendered_again(tmp_path, monkeypatch):
    calls = []
    gratings.probe_stimuli.cache_clear()
    monkeypatch.setattr(gratings, "grating_parameters", lambda name: grating_parameters(name)[:3])
    original = gratings.render_gratings
    monkeypatch.setattr(gratings, "render_gratings", lambda *a: calls.append(a) or original(*a))
    sets = gratings.probe_stimuli(32, 8.0, tmp_path)
    assert {name: tuple(t.shape) for name, t in sets.items()} == {
        **{name: (3, 32, 32) for name in GRATING_SETS},
        BLANK: (1, 32, 32),
    }
    assert torch.all(sets[BLANK] == 128) and len(calls) == 4
    gratings.probe_stimuli.cache_clear()
    again = gratings.probe_stimuli(32, 8.0, tmp_path)
    assert len(calls) == 4 and all(torch.equal(again[name], sets[name]) for name in sets)  # loaded, not rendered
    stimuli_file(32, 8.0, tmp_path).write_bytes(b"truncated")
    gratings.probe_stimuli.cache_clear()
    gratings.probe_stimuli(32, 8.0, tmp_path)
    assert len(calls) == 8


def test_the_probe_runs_the_blank_once(stimulus_cache, monkeypatch):
    """The blank is recorded in one batch padded to the batch size; it also tells the layer's size."""
    calls = []
    original = electrophysiology._activations
    monkeypatch.setattr(
        electrophysiology,
        "_activations",
        lambda network, images, *rest: calls.append(len(images)) or original(network, images, *rest),
    )
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 8, stride=8), torch.nn.ReLU())
    recording = electrophysiology.record(network, 64, 8.0, batch_size=16, progress=False, cache_dir=stimulus_cache)
    assert calls.count(1) == 1 and recording.units == 4 * 8 * 8
