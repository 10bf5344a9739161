"""The scoring contract: made once from the model's settings, saved with it, read back by every scoring path."""

import json
import lzma
from pathlib import Path

import torch

from neurov1.models.contract import ScoringContract
from neurov1.training.module import NeuroV1Module

SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}
STEPS = {"_target_": "torch.optim.lr_scheduler.MultiStepLR", "_partial_": True, "milestones": [1]}
NET = {"arch": "resnet18", "num_classes": 3, "input_size": 64, "components": {"tuned_norm": None}}


def test_the_contract_comes_from_the_settings_and_is_saved_as_plain_data():
    data = {"mean": [0.4, 0.45, 0.5], "std": 0.25, "five_crop": True}
    module = NeuroV1Module(net=NET, optimizer=SGD, scheduler=STEPS, visual_degrees=6.0, data=data)
    assert module.scoring == ScoringContract("layer1", 64, 6.0, (0.4, 0.45, 0.5), 0.25, True)
    assert module.v1_layer == "layer1" and module.scoring.channel_std() == (0.25, 0.25, 0.25)
    saved = module.hparams["scoring"]
    assert json.loads(json.dumps(saved)) == saved  # plain data: a checkpoint loads with weights_only=True
    rebuilt = NeuroV1Module(**{**module.hparams, "scoring": {**saved, "visual_degrees": 4.0}})
    assert rebuilt.scoring.visual_degrees == 4.0 and rebuilt.scoring.mean == (0.4, 0.45, 0.5)  # the saved one wins


def test_a_checkpoint_written_before_the_contract_gets_the_one_its_settings_imply(tmp_path):
    fixture = Path(__file__).parents[1] / "fixtures" / "hook_era" / "resnet18_all_8px.ckpt.xz"
    path = tmp_path / "old.ckpt"
    path.write_bytes(lzma.decompress(fixture.read_bytes()))
    assert "scoring" not in torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]
    module = NeuroV1Module.load_from_checkpoint(path, map_location="cpu")
    assert module.scoring == ScoringContract("layer1", 8, 8, 0.5, 0.5, False)
