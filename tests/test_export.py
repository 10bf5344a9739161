"""``neurov1.export format=brainscore``: a Brain-Score plugin folder that imports offline and computes neurov1's
activations."""

import importlib.util
import sys

import numpy as np
import torch
from PIL import Image

from conftest import run_module
from neurov1.data.demo import demo_images
from neurov1.evaluation.brainscore.environment import import_brainscore
from neurov1.models.activations import LayerOutput
from neurov1.training.module import NeuroV1Module


def import_plugin(folder):
    """Import the plugin folder as a package (its name has a dash, as Brain-Score plugin folders may), under a
    name of its own (a second plugin imported by the same process must not find the first one's modules)."""
    name = f"exported_plugin_{abs(hash(str(folder)))}"
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    return package


def export_plugin(checkpoint, tmp_path):
    """``neurov1.export format=brainscore`` of ``checkpoint`` into ``tmp_path/out``; returns the plugin folder."""
    run_module(
        "neurov1.export",
        f"ckpt_path={checkpoint}",
        "format=brainscore",
        f"out={tmp_path / 'out'}",
        log_dir=tmp_path / "logs",
    )
    (folder,) = (tmp_path / "out").iterdir()
    return folder


def test_exported_plugin_builds_the_commitment_and_neurov1_activations(demo_run, tmp_path):
    checkpoint = demo_run / "checkpoints" / "best.ckpt"
    folder = export_plugin(checkpoint, tmp_path)
    assert {p.name for p in folder.iterdir()} >= {
        "__init__.py",
        "model.py",
        "test.py",
        "requirements.txt",
        "weights.pt",
    }
    brainscore_vision = import_brainscore(tmp_path / "cache")
    import_plugin(folder)
    commitment = brainscore_vision.model_registry[folder.name]()
    assert commitment.identifier == folder.name and commitment.visual_degrees() == 8
    assert commitment.layers == ["layer1"]

    paths = []
    for index, image in enumerate(list(demo_images().values())[:4]):
        path = tmp_path / f"{index}.png"
        Image.fromarray(image).resize((64, 64)).save(path)
        paths.append(str(path))
    theirs = commitment.activations_model(paths, layers=["layer1"], stimuli_identifier=False)
    net = NeuroV1Module.load_from_checkpoint(checkpoint, map_location="cpu").net.eval()
    batch = torch.stack(
        [torch.from_numpy(np.asarray(Image.open(p), dtype=np.float32) / 255).permute(2, 0, 1) for p in paths]
    )
    with torch.no_grad():
        ours = LayerOutput(net, "layer1")((batch - 0.5) / 0.5).flatten(1).numpy()
    order = np.argsort([paths.index(p) for p in theirs["stimulus_path"].values])
    np.testing.assert_allclose(theirs.values[order], ours, rtol=1e-4, atol=1e-5)


def test_export_refuses_a_bad_format_and_a_used_folder(demo_run, tmp_path):
    checkpoint = demo_run / "checkpoints" / "best.ckpt"
    result = run_module(
        "neurov1.export",
        f"ckpt_path={checkpoint}",
        "format=onnx",
        f"out={tmp_path}",
        log_dir=tmp_path / "logs",
        check=False,
    )
    assert result.returncode == 1 and "format: one of brainscore" in result.stderr
    arguments = [f"ckpt_path={checkpoint}", "format=brainscore", f"out={tmp_path / 'out'}"]
    run_module("neurov1.export", *arguments, log_dir=tmp_path / "logs")
    again = run_module("neurov1.export", *arguments, log_dir=tmp_path / "logs", check=False)
    assert again.returncode == 1 and "exists and is not empty" in again.stderr
