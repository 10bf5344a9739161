"""End to end: the training entry point on the embedded demo data, checkpoints, resume and bad input."""

import json
import shutil
import time

import pytest
import torch

from conftest import ALL, REPO, TINY_DEMO, run_dirs, run_module
from neurov1.results.ledger import load_records
from neurov1.training.module import NeuroV1Module


def test_run_writes_metrics_and_checkpoints(demo_run):
    metrics = json.loads((demo_run / "metrics.json").read_text())
    assert metrics["components"] == ALL
    assert metrics["status"] == "completed" and metrics["seed"] == 0
    assert metrics["run_name"] == "center_surround+local_rf+tuned_norm+cortical_mag-s0"
    assert metrics["data"]["num_classes"] == 10
    assert 0.0 <= metrics["best"]["value"] <= 1.0 and metrics["best"]["monitor"] == "val/acc1"
    assert {"val/acc1", "val/acc5", "val/loss", "train/loss_epoch"} <= set(metrics["final"])
    assert (demo_run / "checkpoints" / "best.ckpt").is_file()
    assert (demo_run / "checkpoints" / "last.ckpt").is_file()
    assert (demo_run / "csv" / "metrics.csv").is_file()
    assert not list(demo_run.glob(".*.tmp")), "atomic writes leave no temporary files"


def test_checkpoint_rebuilds_the_exact_model(demo_run):
    path = demo_run / "checkpoints" / "best.ckpt"
    model = NeuroV1Module.load_from_checkpoint(path, map_location="cpu")  # torch's default weights_only=True
    assert model.components == ALL
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key])
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_a_checkpoint_without_the_running_training_metrics_still_loads(demo_run, tmp_path):
    checkpoint = torch.load(demo_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    torch.save(checkpoint, tmp_path / "older.ckpt")
    model = NeuroV1Module.load_from_checkpoint(tmp_path / "older.ckpt", map_location="cpu")
    assert torch.equal(model.net.conv1.weight, checkpoint["state_dict"]["net.conv1.weight"])


def test_resume_continues_training_in_the_run_folder(demo_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(demo_run, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    steps_before = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    overrides = [o for o in TINY_DEMO if not o.startswith("trainer.max_epochs")]
    run_module(
        "neurov1.train",
        *overrides,
        "+model/components=all",
        "trainer.max_epochs=2",
        f"ckpt_path={last}",
        log_dir=tmp_path,
    )
    assert run_dirs(tmp_path) == [run_dir]  # no new run folder
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["global_step"] == 2 * steps_before
    assert metrics["resumed_from"] == str(last)
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 2 * steps_before


def test_resume_with_another_component_set_is_refused(demo_run, tmp_path):
    last = demo_run / "checkpoints" / "last.ckpt"
    started = time.time()
    result = run_module(
        "neurov1.train",
        *TINY_DEMO,
        "+model/components=[tuned_norm]",
        f"ckpt_path={last}",
        log_dir=tmp_path,
        check=False,
    )
    assert result.returncode != 0
    assert "was trained as resnet18 with [center_surround,local_rf,tuned_norm,cortical_mag]" in result.stderr
    assert "'+model/components=[center_surround,local_rf,tuned_norm,cortical_mag]'" in result.stderr
    assert not run_dirs(tmp_path) and time.time() - started < 60


def test_divisive_with_local_rf_trains(tmp_path):
    run_module("neurov1.train", *TINY_DEMO, "+model/components=[divisive_norm,local_rf]", log_dir=tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    assert json.loads((run_dir / "metrics.json").read_text())["components"] == ["local_rf", "divisive_norm"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("+model/components=[divisive_norm,tuned_norm]",), "divisive_norm and tuned_norm cannot be combined"),
        (("+model/components=[tuned_normalization]",), "unknown option 'tuned_normalization'. Did you mean"),
        (("+model/components=tuned_norm", "+model.net.components.tuned_norm.width=2"), "unknown parameter 'width'"),
        (("data=imagenet", "data.root=/nonexistent/imagenet"), "data.root: /nonexistent/imagenet does not exist"),
        (("model.net.num_classes=5",), "model.net.num_classes=5 but neurov1.data.DemoDataModule has 10 classes"),
    ],
)
def test_bad_input_fails_fast_with_a_clear_message(tmp_path, overrides, message):
    demo = [o for o in TINY_DEMO if not o.startswith("data.")] if overrides[0] == "data=imagenet" else TINY_DEMO
    result = run_module("neurov1.train", *demo, *overrides, log_dir=tmp_path, check=False, process=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "ConfigError" in result.stderr and "Traceback" not in result.stderr
    assert not run_dirs(tmp_path)


def test_wandb_falls_back_to_offline(tmp_path):
    run_module("neurov1.train", *TINY_DEMO, "logger=wandb", log_dir=tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1


@pytest.mark.e2e
def test_ddp_on_two_cpu_processes(tmp_path):
    run_module(
        "neurov1.train",
        *TINY_DEMO,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.max_epochs=5",
        "+trainer.max_steps=3",
        log_dir=tmp_path,
        process=True,  # (Lightning starts the second rank by running this process's command line again)
    )
    (run_dir,) = run_dirs(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 3


def test_every_finished_run_is_recorded_in_the_ledger(demo_run):
    records = load_records(demo_run.parents[2] / "results")
    (record,) = [r for r in records if r["run_dir"] == str(demo_run)]
    assert record["command"] == "train" and record["seed"] == 0 and record["epochs"] == 1
    assert record["components"] == ALL and record["best"]["checkpoint"].endswith("best.ckpt")
    assert "val/acc1" in record["final"]


@pytest.mark.e2e
def test_joblib_multirun_runs_jobs_in_parallel_into_separate_dirs(tmp_path):
    overrides = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY_DEMO, "seed=0,1"]
    run_module("neurov1.train", *overrides, log_dir=tmp_path)
    runs = run_dirs(tmp_path)
    assert sorted(json.loads((run / "metrics.json").read_text())["seed"] for run in runs) == [0, 1]
    assert len({run.name for run in runs}) == 2  # job-numbered folders of one sweep


@pytest.mark.parametrize(("classifier", "classes", "loaded"), [(True, 10, True), (False, 10, False), (True, 7, False)])
def test_initial_weights_bring_the_classifier_only_when_asked_and_it_fits(tmp_path, classifier, classes, loaded):
    from neurov1.training.run import load_initial_weights

    def module(num_classes):
        net = {"arch": "resnet18", "num_classes": num_classes, "input_size": 64, "components": {"tuned_norm": {}}}
        return NeuroV1Module(net, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}, {"milestones": [], "gamma": 0.1})

    torch.manual_seed(0)
    source, target = module(10), module(classes)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "init.ckpt")
    load_initial_weights(target, str(tmp_path / "init.ckpt"), classifier=classifier)
    assert torch.equal(target.net.conv1.weight, source.net.conv1.weight)
    fc_equal = target.net.fc.weight.shape == source.net.fc.weight.shape and torch.equal(
        target.net.fc.weight, source.net.fc.weight
    )
    assert fc_equal == loaded


def test_the_composite_model_compiles_without_graph_breaks():
    from torch import _dynamo

    from neurov1.models import build_network

    components = {name: {} for name in ALL}
    for memory_format in (torch.contiguous_format, torch.channels_last):
        net = build_network("resnet18", 10, 64, components).to(memory_format=memory_format).train()
        explanation = _dynamo.explain(net)(torch.randn(4, 3, 64, 64).contiguous(memory_format=memory_format))
        assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons


@pytest.mark.e2e
def test_compiled_channels_last_training_on_cpu_keeps_eager_checkpoints(tmp_path):
    run_module(
        "neurov1.train",
        *TINY_DEMO,
        "+model/components=all",
        "model.compile=true",
        "model.channels_last=true",
        log_dir=tmp_path,
        env={"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")},  # (not the cache other processes write to)
    )
    (run_dir,) = run_dirs(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["global_step"] == 5
    model = NeuroV1Module.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    assert not any("_orig_mod" in key for key in model.state_dict())
    with torch.no_grad():
        assert torch.isfinite(model.eval()(torch.randn(2, 3, 64, 64))).all()


PLUGINS = REPO / "tests" / "plugins"


def test_a_component_of_your_own_trains_saves_and_reloads(tmp_path, monkeypatch):
    """A Gabor bank from outside neurov1 (tests/plugins), selected through its own config folder, at the stem conv."""
    searchpath = f"hydra.searchpath=[file://{PLUGINS / 'conf'}]"
    env = {"PYTHONPATH": str(PLUGINS)}
    overrides = (*TINY_DEMO, searchpath, "+model/components=[gabor,tuned_norm]")
    run_module("neurov1.train", *overrides, log_dir=tmp_path, env=env)
    (run_dir,) = run_dirs(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["components"] == ["tuned_norm", "gabor"] and metrics["status"] == "completed"
    assert metrics["component_params"]["gabor"] == {
        "_target_": "gabor_bank.GaborBank",
        "site": "stem_conv",
        "kernel_size": 7,
        "wavelength": 4.0,
    }
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["net"]["components"] == metrics["component_params"]
    monkeypatch.syspath_prepend(str(PLUGINS))
    last = run_dir / "checkpoints" / "last.ckpt"
    model = NeuroV1Module.load_from_checkpoint(last, map_location="cpu", trusted_targets=["gabor_bank.GaborBank"])
    assert type(model.net.conv1).__name__ == "GaborBank" and model.net.conv1.weight.shape == (64, 3, 7, 7)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_another_optimizer_and_schedule_by_config_alone(tmp_path):
    cosine = ["model/optimizer=adamw", "model/scheduler=cosine"]
    failed = run_module("neurov1.train", *TINY_DEMO, *cosine, log_dir=tmp_path / "failed", check=False)
    assert failed.returncode == 1  # the demo experiment sets milestones for its MultiStepLR
    assert "~model.scheduler.milestones" in failed.stderr.splitlines()[-1]
    run_module("neurov1.train", *TINY_DEMO, *cosine, "~model.scheduler.milestones", log_dir=tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["optimizer"]["_target_"] == "torch.optim.AdamW"
    assert "exp_avg" in checkpoint["optimizer_states"][0]["state"][0]  # Adam's moments
    assert checkpoint["lr_schedulers"][0]["T_max"] == 1


@pytest.mark.e2e
def test_vgg_trains_with_every_component_and_is_scored_on_v1(tmp_path, stimulus_cache):
    run_module("neurov1.train", *TINY_DEMO, "model.net.arch=vgg11_bn", "+model/components=all", log_dir=tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    run_module(
        "neurov1.evaluate",
        f"ckpt_path={checkpoint}",
        "eval.source=offline",
        "eval.benchmarks=[Marques2020_Cavanaugh2002-surround_diameter]",
        f"eval.cache_dir={stimulus_cache}",
        log_dir=tmp_path / "eval",
    )
    (scores,) = (tmp_path / "eval").rglob("v1_scores.json")
    report = json.loads(scores.read_text())
    assert report["layer"] == "features.13" and report["model"] == "vgg11_bn-" + "+".join(ALL)


@pytest.mark.parametrize("debug", ["fast_dev_run", "profiler"])
def test_debug_configs_run_and_keep_their_results_apart(tmp_path, debug):
    run_module("neurov1.train", *TINY_DEMO, f"debug={debug}", log_dir=tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert list((tmp_path / "debug" / "results" / "records").glob("*.json")) and not (tmp_path / "results").exists()
