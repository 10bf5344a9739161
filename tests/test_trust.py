"""Checkpoints are data, not code: a file from elsewhere that names other code never gets it imported or run.

A hostile checkpoint is today's demo checkpoint with one more component whose ``_target_`` is ``os.system`` and
whose "parameter" is a shell command that would create a marker file; every way of loading it must refuse it in one
line (naming the target, the file and the option that would trust it) and the marker must never appear.
"""

import json

import pytest
import torch

from conftest import REPO, TINY_DEMO, run_dirs, run_module
from neurov1.models.trust import UntrustedTarget, check_saved_targets, composed_targets, is_trusted
from neurov1.training.module import NeuroV1Module
from test_export import export_plugin, import_plugin

PLUGINS = REPO / "tests" / "plugins"
GABOR = "gabor_bank.GaborBank"


def hostile(node: dict, marker) -> dict:
    """``node`` with a component that would run a shell command creating ``marker``."""
    components = {
        **node["components"],
        "evil": {"_target_": "os.system", "site": "v1_conv", "command": f"touch {marker}"},
    }
    return {**node, "components": components}


@pytest.fixture
def crafted(demo_run, tmp_path):
    """(hostile checkpoint in a run folder of its own, the marker its payload would create)."""
    marker = tmp_path / "payload-ran"
    checkpoint = torch.load(demo_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["net"] = hostile(checkpoint["hyper_parameters"]["net"], marker)
    path = tmp_path / "shared_run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(checkpoint, path)
    return path, marker


def refusal(path, key: str = "ckpt_path") -> str:
    return (
        f"UntrustedTarget: {key}={path}: net.components.evil._target_ is 'os.system', which is neither "
        "neurov1's own code nor a target you trust; neurov1 does not import or run code named by a file. If you "
        "trust where this file comes from, add trusted_targets=[os.system] (Python: trusted_targets=['os.system'])."
    )


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("neurov1.evaluate", ["ckpt_path={path}", "eval=v1_probe"]),
        ("neurov1.export", ["ckpt_path={path}", "format=brainscore", "out={out}"]),
        ("neurov1.analyze", ["ckpt_path={path}"]),
        ("neurov1.train", [*TINY_DEMO, "ckpt_init={path}"]),
        ("neurov1.train", [*TINY_DEMO, "+model/components=all", "ckpt_path={path}"]),
    ],
    ids=["evaluate", "export", "analyze", "ckpt_init", "resume"],
)
def test_a_checkpoint_naming_other_code_is_refused_by_every_command(crafted, tmp_path, command, arguments):
    path, marker = crafted
    arguments = [a.format(path=path, out=tmp_path / "out") for a in arguments]
    result = run_module(command, *arguments, log_dir=tmp_path / "logs", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    key = "ckpt_init" if any(a.startswith("ckpt_init=") for a in arguments) else "ckpt_path"
    assert result.stderr.strip().splitlines()[-1] == refusal(path, key)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_load_from_checkpoint_refuses_other_code_and_the_option_trusts_only_what_it_names(crafted):
    path, marker = crafted
    with pytest.raises(UntrustedTarget, match=r"add trusted_targets=\[os.system\]"):
        NeuroV1Module.load_from_checkpoint(path, map_location="cpu")
    with pytest.raises(UntrustedTarget):  # trusting another target (or a look-alike prefix) does not trust this one
        NeuroV1Module.load_from_checkpoint(path, map_location="cpu", trusted_targets=["os.sys", "posix"])
    assert not marker.exists()


def test_an_edited_weights_file_in_an_exported_plugin_is_refused(demo_run, tmp_path):
    from neurov1.evaluation.brainscore.environment import import_brainscore

    folder = export_plugin(demo_run / "checkpoints" / "best.ckpt", tmp_path)
    marker = tmp_path / "payload-ran"
    weights = torch.load(folder / "weights.pt", weights_only=True)
    torch.save({**weights, "net": hostile(weights["net"], marker)}, folder / "weights.pt")
    brainscore_vision = import_brainscore(tmp_path / "cache")
    import_plugin(folder)
    with pytest.raises(UntrustedTarget, match=f"{folder / 'weights.pt'}: net.components.evil._target_ is 'os.system'"):
        brainscore_vision.model_registry[folder.name]()
    assert not marker.exists()


def test_every_kind_of_target_in_saved_state_is_checked():
    saved = {
        "net": {
            "arch": "resnet18",
            "backbone": None,
            "components": {
                "tuned_norm": {"_target_": "neurov1.components.TunedNormalization", "site": "v1_block_output"}
            },
        },
        "optimizer": {"_target_": "torch.optim.SGD", "lr": 0.1},
        "scheduler": {"_target_": "torch.optim.lr_scheduler.MultiStepLR", "milestones": [1]},
        "data": {"_target_": "neurov1.data.DemoDataModule"},
    }
    check_saved_targets(saved, "file.ckpt")  # neurov1's own and torch's optimizers and schedulers
    for key, bad in [
        ("net.backbone", {**saved, "net": {**saved["net"], "backbone": "subprocess.Popen"}}),
        ("optimizer._target_", {**saved, "optimizer": {"_target_": "torch.optim.Optimizer.__init__"}}),
        ("scheduler._target_", {**saved, "scheduler": {"_target_": "torch.optim.lr_scheduler.LambdaLR.x"}}),
        ("data._target_", {**saved, "data": {"_target_": "neurov1.utils.io.write_text_atomic"}}),
        ("data.extra[0]._target_", {**saved, "data": {**saved["data"], "extra": [{"_target_": "builtins.exec"}]}}),
    ]:
        with pytest.raises(UntrustedTarget, match=rf"file.ckpt: {key.replace('[', '.').replace(']', '.')}"):
            check_saved_targets(bad, "file.ckpt")
    assert is_trusted("userpkg.sub.Gain", ["userpkg"]) and not is_trusted("userpkg2.Gain", ["userpkg"])


def test_the_configs_composed_for_a_run_are_trusted():
    composed = {"model": {"net": {"components": {"gabor": {"_target_": GABOR}}}}, "trusted_targets": ["userpkg.X"]}
    assert set(composed_targets(composed)) == {GABOR, "userpkg.X"}


def test_a_component_of_your_own_evaluates_from_its_checkpoint_only_when_trusted(tmp_path, monkeypatch):
    """The Gabor bank of tests/plugins (outside neurov1) trains and saves; its checkpoint is then evaluated."""
    searchpath = f"hydra.searchpath=[file://{PLUGINS / 'conf'}]"
    env = {"PYTHONPATH": str(PLUGINS)}
    run_module("neurov1.train", *TINY_DEMO, searchpath, "+model/components=[gabor]", log_dir=tmp_path, env=env)
    (run_dir,) = run_dirs(tmp_path)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    arguments = (f"ckpt_path={checkpoint}", "eval=adversarial", "eval.limit=8", "eval.attack.steps=1")
    refused = run_module("neurov1.evaluate", *arguments, log_dir=tmp_path / "refused", env=env, check=False)
    assert refused.returncode == 1
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith(f"UntrustedTarget: ckpt_path={checkpoint}: net.components.gabor._target_ is '{GABOR}'")
    assert line.endswith(f"add trusted_targets=[{GABOR}] (Python: trusted_targets=['{GABOR}']).")
    trusted = (*arguments, f"trusted_targets=[{GABOR}]")
    run_module("neurov1.evaluate", *trusted, log_dir=tmp_path / "trusted", env=env)
    (scores,) = (tmp_path / "trusted").rglob("adversarial_accuracy.json")
    assert 0.0 <= json.loads(scores.read_text())["clean_acc1"] <= 1.0
    monkeypatch.syspath_prepend(str(PLUGINS))
    model = NeuroV1Module.load_from_checkpoint(checkpoint, map_location="cpu", trusted_targets=[GABOR])
    assert type(model.net.conv1).__name__ == "GaborBank"
