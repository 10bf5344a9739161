"""Free adversarial training (paper Sec. 4.5, Appendix G; Shafahi et al. 2019) and L-inf PGD evaluation."""

import csv
import json

import lightning as L
import pytest
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from lightning.pytorch.plugins import MixedPrecision
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from conftest import TINY_DEMO, run_dirs, run_module
from neurov1.data import DemoDataModule
from neurov1.data.transforms import PixelSpace
from neurov1.errors import ConfigError
from neurov1.evaluate import evaluate
from neurov1.evaluation.adversarial import AdversarialEvaluation, PGDAttack, pgd_accuracy
from neurov1.results.ledger import load_records
from neurov1.training.callbacks import EvaluationCallback
from neurov1.training.free_adversarial import FreeAdversarialModule, free_step
from neurov1.training.module import NeuroV1Module
from neurov1.utils.config import CONFIG_PACKAGE
from neurov1.utils.instantiate import instantiate_callbacks

EPS = 2 / 255
SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-5}
NET = {"arch": "resnet18", "num_classes": 2, "input_size": 16, "components": {}}
ATTACK = {"eps": EPS, "steps": 10, "step_size": EPS / 4, "random_start": True, "seed": 0}


def free_module(replays: int = 2, milestones: tuple[int, ...] = ()) -> FreeAdversarialModule:
    schedule = {"milestones": list(milestones), "gamma": 0.1}
    return FreeAdversarialModule(NET, SGD, schedule, adversarial={"replays": replays, "eps": EPS})


def tiny_data(**settings) -> DemoDataModule:
    return DemoDataModule(**{"num_classes": 2, "val_per_class": 2, "batch_size": 4, "image_size": 16, **settings})


def fit(
    module: L.LightningModule, data: L.LightningDataModule, max_epochs: int, ckpt_path: str | None = None, **settings
) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **settings,
    )
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return trainer


def compose(config: str, *overrides: str) -> DictConfig:
    with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
        return hydra_compose(config, overrides=list(overrides))


class Recorder(L.Callback):
    """The perturbation at the start and end of every batch, the batch, and the learning rate of every update."""

    def __init__(self) -> None:
        self.starts, self.ends, self.images, self.learning_rates = [], [], [], []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.starts.append(torch.zeros(4, 3, 16, 16) if module.delta is None else module.delta.clone())
        self.images.append(batch[0].clone())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.ends.append(module.delta.clone())

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.learning_rates.append(optimizer.param_groups[0]["lr"])


def test_free_step_is_the_signed_gradient_step_clipped_to_eps_and_skips_non_finite_gradients():
    delta = torch.tensor([0.0, EPS, -EPS, EPS / 2])
    grad = torch.tensor([-3.0, 1.0, 2.0, -1e-9])
    torch.testing.assert_close(free_step(delta, grad, EPS), torch.tensor([-EPS, EPS, 0.0, -EPS / 2]))
    for bad in (float("nan"), float("inf")):
        assert torch.equal(free_step(delta, torch.tensor([1.0, bad, 1.0, 1.0]), EPS), delta)


def test_free_training_carries_delta_within_eps_with_the_standard_number_of_updates():
    """4 effective epochs, m = 2: 2 passes of 4 batches (4, 4, 4, 2 images), 16 updates, lr x0.1 after 2 epochs."""
    data = tiny_data(train_per_class=7)
    data.setup("fit")
    # without drop_last: the smaller last batch stays
    data.train_dataloader = lambda: DataLoader(data.train_dataset, batch_size=4, shuffle=True)
    module, recorder, inputs = free_module(replays=2, milestones=(2,)), Recorder(), []
    module.net.register_forward_pre_hook(lambda net, args: inputs.append(args[0].detach().clone()))
    trainer = fit(module, data, max_epochs=4, callbacks=[recorder])

    assert trainer.current_epoch == 2 and trainer.global_step == 4 * 4  # standard: epochs x batches per epoch
    assert recorder.learning_rates == pytest.approx([0.1] * 8 + [0.01] * 8)  # milestone 2 epochs = update 8
    for batch, (start, end, images) in enumerate(zip(recorder.starts, recorder.ends, recorder.images, strict=True)):
        assert torch.isin(end, torch.tensor([-EPS, 0.0, EPS])).all()  # steps of eps from 0, clipped to eps
        if batch:
            assert torch.equal(start, recorder.ends[batch - 1]) and start.abs().sum() > 0  # carried over
        rows = len(images)
        assert torch.equal(end[rows:], start[rows:])  # a smaller batch moves only its own rows
        pixels = (images * 0.5 + 0.5 + start[:rows]).clamp(0, 1)  # data mean = std = 0.5
        torch.testing.assert_close(inputs[2 * batch] * 0.5 + 0.5, pixels)  # first replay: clamp(x + delta, 0, 1)
    assert module.delta.shape == (4, 3, 16, 16) and recorder.ends[0].abs().sum() > 0


def test_a_resumed_run_carries_on_with_the_checkpointed_delta(tmp_path):
    data = tiny_data(train_per_class=4)
    first = free_module(replays=2)
    trainer = fit(first, data, max_epochs=2)  # one pass
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    assert first.delta.abs().sum() > 0

    recorder = Recorder()
    resumed = fit(
        free_module(replays=2), data, max_epochs=4, ckpt_path=str(tmp_path / "last.ckpt"), callbacks=[recorder]
    )
    assert resumed.current_epoch == 2 and torch.equal(recorder.starts[0], first.delta)


def test_fp16_overflow_never_reaches_delta():
    """An fp16 loss scale that overflows every gradient: the scaler skips the updates and delta stays zero."""
    module = free_module(replays=2)
    weights = {name: p.detach().clone() for name, p in module.named_parameters()}
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
    fit(
        module,
        tiny_data(train_per_class=4),
        max_epochs=2,
        limit_train_batches=1,
        plugins=[MixedPrecision("16-mixed", "cpu", scaler)],
    )
    assert torch.equal(module.delta, torch.zeros_like(module.delta))
    assert scaler.get_scale() < 2.0**40  # both updates were skipped as overflowing
    assert all(torch.equal(p, weights[name]) for name, p in module.named_parameters())


@pytest.mark.parametrize(
    ("settings", "key"),
    [({"replays": 0, "eps": EPS}, "model.adversarial.replays"), ({"replays": 4, "eps": -0.1}, "model.adversarial.eps")],
)
def test_bad_free_settings_name_the_key(settings, key):
    with pytest.raises(ConfigError, match=key):
        FreeAdversarialModule(NET, SGD, {"milestones": [], "gamma": 0.1}, adversarial=settings)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"eps": -1}, "attack.eps"),
        ({"steps": 0}, "attack.steps"),
        ({"step_size": 0}, "attack.step_size"),
        ({"seed": -1}, "attack.seed"),
        ({"norm": 2}, "unknown keys"),
    ],
)
def test_bad_attack_settings_name_the_key(change, key):
    with pytest.raises(ConfigError, match=key):
        PGDAttack.from_config({**ATTACK, **change}, "eval.attack")


@pytest.fixture(scope="module")
def trained():
    """A ResNet-18 trained for a few epochs on 4 demo classes at 32 px (clean val accuracy well above chance)."""
    L.seed_everything(0)
    data = DemoDataModule(num_classes=4, train_per_class=48, val_per_class=16, batch_size=32, image_size=32)
    net = {"arch": "resnet18", "num_classes": 4, "input_size": 32, "components": {}}
    module = NeuroV1Module(net, {**SGD, "lr": 0.002}, {"milestones": [], "gamma": 0.1})
    fit(module, data, max_epochs=4)
    return module.net.eval(), data


@pytest.mark.xdist_group("pgd_model")  # one worker trains the shared model
def test_pgd_stays_in_the_eps_ball_and_in_pixel_range(trained):
    net, data = trained
    images, labels = next(iter(data.val_dataloader()))
    space = PixelSpace.of(data, torch.device("cpu"))
    pixels = space.pixels(images)
    attack = PGDAttack.from_config(ATTACK, "eval.attack")
    adversarial = attack.perturb(net, pixels, labels, space, torch.Generator().manual_seed(0))
    assert (adversarial - pixels).abs().max() <= EPS + 1e-6 and adversarial.min() >= 0 and adversarial.max() <= 1
    loss = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert loss(net(space.normalize(adversarial)), labels) > loss(net(images), labels)


@pytest.mark.xdist_group("pgd_model")
def test_pgd_lowers_the_accuracy_of_a_trained_model(trained):
    net, data = trained
    result = pgd_accuracy(net, data, PGDAttack.from_config(ATTACK, "eval.attack"))
    assert result["images"] == 64 and result["clean_acc1"] >= 0.5  # chance: 0.25
    assert result["acc1"] <= result["clean_acc1"] - 0.1
    assert pgd_accuracy(net, data, PGDAttack.from_config(ATTACK, "eval.attack"), limit=16)["images"] == 16


@pytest.mark.e2e
def test_free_adversarial_training_and_pgd_evaluation_end_to_end(demo_run, tmp_path):
    """Free AT from the demo checkpoint with the PGD callback, then ``neurov1.evaluate eval=adversarial``."""
    overrides = [o for o in TINY_DEMO if not o.startswith(("experiment=", "trainer.max_epochs"))]
    run_module(
        "neurov1.train",
        "experiment=free_adversarial",
        "data=demo",
        "trainer=cpu",
        *overrides,
        "trainer.max_epochs=4",  # effective epochs: one pass of 4 replays
        f"ckpt_init={demo_run / 'checkpoints' / 'last.ckpt'}",
        "callbacks=adversarial",
        "callbacks.adversarial.evaluation.attack.steps=2",
        log_dir=tmp_path / "train",
    )
    (run_dir,) = run_dirs(tmp_path / "train")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["adversarial_training"] == {"replays": 4, "eps": EPS}
    assert metrics["epochs"] == 1 and metrics["global_step"] == 4 * 5  # as 4 standard epochs of 5 batches
    assert metrics["final"]["train/effective_epoch"] == 4.0
    assert {"adversarial/clean_acc1", "adversarial/acc1"} <= set(metrics["final"])
    assert (run_dir / "adversarial" / "epoch_001" / "adversarial_accuracy.md").is_file()

    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    assert NeuroV1Module.load_from_checkpoint(checkpoint).hparams["adversarial"] == {"replays": 4, "eps": EPS}
    assert isinstance(FreeAdversarialModule.load_from_checkpoint(checkpoint), FreeAdversarialModule)

    # No data group given: the data the checkpoint was trained on (demo, 4 val images per class).
    evaluation = [f"ckpt_path={checkpoint}", "eval=adversarial"]
    run_module("neurov1.evaluate", *evaluation, "eval.attack.steps=3", log_dir=tmp_path / "eval")
    (output,) = {p.parent for p in (tmp_path / "eval").rglob("adversarial_accuracy.json")}
    (row,) = csv.DictReader((output / "adversarial_accuracy.csv").open())
    assert row["images"] == "40" and row["steps"] == "3" and float(row["acc1"]) <= float(row["clean_acc1"])
    assert "| 2/255 | 3 | 0.5/255 | true | 40 |" in (output / "adversarial_accuracy.md").read_text()
    (record,) = load_records(tmp_path / "eval" / "results")
    assert record["eval"] == "adversarial" and record["settings"]["attack"]["steps"] == 3
    assert record["metrics"]["adversarial/acc1"] == pytest.approx(float(row["acc1"]))
    with pytest.raises(ConfigError, match="data: DemoDataModule has 4 classes but the model classifies 10"):
        evaluate(compose("evaluate", *evaluation, "data=demo", "data.num_classes=4", "data.batch_size=16"))


def test_experiment_expresses_the_paper_recipe_in_effective_epochs():
    cfg = compose("train", "experiment=free_adversarial", "+model/components=all")
    assert cfg.model._target_ == "neurov1.training.free_adversarial.FreeAdversarialModule"
    assert cfg.model.adversarial == {"replays": 4, "eps": EPS}
    assert cfg.model.optimizer._target_ == "torch.optim.SGD"
    assert {k: cfg.model.optimizer[k] for k in ("lr", "momentum", "weight_decay")} == {
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-5,
    }
    assert list(cfg.model.scheduler.milestones) == [40, 80] and cfg.trainer.max_epochs == 120


def test_pgd_callback_config_and_bad_settings_refused_before_work(tmp_path):
    cfg = compose(
        "train",
        "callbacks=adversarial",
        "callbacks.adversarial.evaluation.attack.seed=3",
        f"paths.output_dir={tmp_path}",
    )
    (callback,) = [c for c in instantiate_callbacks(cfg.callbacks) if isinstance(c, EvaluationCallback)]
    assert isinstance(callback.evaluation, AdversarialEvaluation) and callback.every_n_epochs == 0
    assert callback.evaluation.attack == PGDAttack(**{**ATTACK, "seed": 3}) and callback.evaluation.limit == 1000
    cfg = compose("evaluate", "eval=adversarial", "ckpt_path=missing.ckpt", "eval.attack.steps=0")
    with pytest.raises(ConfigError, match="eval.attack.steps: must be a positive integer"):
        evaluate(cfg)
