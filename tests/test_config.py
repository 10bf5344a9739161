"""The real Hydra configs: component presets, experiments, sweeps and run directories."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from conftest import ALL, COMPONENTS
from neurov1.models import resolve_components
from neurov1.utils.instantiate import instantiate_loggers, keyword_parameters, locate

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose_train(*overrides: str, hydra_config: bool = False):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_config)


def components_of(cfg) -> list[str]:
    return list(resolve_components(OmegaConf.to_container(cfg.model.net.components)))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ((), []),
        (("+model/components=none",), []),
        (("+model/components=all",), ALL),
        (("+model/components=[tuned_norm,center_surround]",), ["center_surround", "tuned_norm"]),
        (("+model/components=[divisive_norm,local_rf]",), ["local_rf", "divisive_norm"]),
        *[((f"+model/components=all_without_{name}",), [c for c in ALL if c != name]) for name in ALL],
    ],
)
def test_component_presets(overrides, expected):
    cfg = compose_train(*overrides)
    assert components_of(cfg) == expected
    assert set(cfg.model.net) == {"arch", "backbone", "num_classes", "input_size", "components"}
    assert cfg.model.optimizer._target_ == "torch.optim.SGD" and cfg.model.scheduler._partial_


def test_component_parameter_override():
    cfg = compose_train("+model/components=all", "model.net.components.center_surround.fraction=0.5")
    assert cfg.model.net.components.center_surround.fraction == 0.5


@pytest.mark.parametrize("name", COMPONENTS)
def test_component_nodes_show_the_constructors_defaults(name):
    """The yaml lists each parameter a user overrides, with the value the constructor defaults to."""
    node = yaml.safe_load((CONF / "model" / "components" / f"{name}.yaml").read_text())
    parameters = keyword_parameters(locate(node["_target_"], name))
    for key, value in node.items():
        if key not in ("_target_", "_partial_", "site"):
            assert parameters[key].default == value, key


@pytest.mark.parametrize("experiment", ["demo", "paper_imagenet64"])
def test_experiments_compose_with_any_component_set(experiment):
    cfg = compose_train(f"experiment={experiment}", "+model/components=all")
    assert components_of(cfg) == ALL
    assert cfg.model.optimizer.momentum == 0.9


def test_paper_recipe():
    cfg = compose_train("experiment=paper_imagenet64")
    assert cfg.model.net.arch == "resnet50" and cfg.data.image_size == 64 and cfg.data.batch_size == 128
    assert {k: cfg.model.optimizer[k] for k in ("lr", "momentum", "weight_decay")} == {
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-5,
    }
    assert list(cfg.model.scheduler.milestones) == [60, 80] and cfg.trainer.max_epochs == 100
    assert cfg.trainer.precision in ("bf16-mixed", "16-mixed")


def sweep_jobs(sweep: str) -> list[list[str]]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        params = compose("train", overrides=[f"sweep={sweep}"], return_hydra_config=True).hydra.sweeper.params
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        parsed = parser.parse_overrides([f"{key}={value}" for key, value in params.items()])
        (batch,) = BasicSweeper.split_arguments(parsed, None)
    return batch


def test_single_component_sweep_jobs():
    jobs = sweep_jobs("single_component")
    composed = sorted((tuple(components_of(compose_train("sweep=single_component", *job))), job[-1]) for job in jobs)
    expected = sorted(
        (tuple(names), f"seed={seed}") for names in [[], *[[name] for name in COMPONENTS]] for seed in range(3)
    )
    assert composed == expected


def test_backward_elimination_sweep_config():
    hydra_cfg = compose_train("sweep=backward_elimination", hydra_config=True).hydra
    sweeper = hydra_cfg.sweeper
    assert sweeper._target_.endswith("BackwardEliminationSweeper") and sweeper.metric == "v1/overall"
    assert list(sweeper.start) == [c for c in ALL if c != "divisive_norm"]  # the paper's start set
    assert hydra_cfg.sweep.dir.endswith("backward_elimination/default")  # stable: rerunning resumes
    named = compose_train("sweep=backward_elimination", "hydra.sweeper.name=paper", hydra_config=True).hydra
    assert named.sweep.dir.endswith("backward_elimination/paper")


def test_run_directories_never_collide():
    hydra_cfg = OmegaConf.to_container(compose_train(hydra_config=True).hydra, resolve=False)
    assert hydra_cfg["run"]["dir"].endswith("${now:%Y-%m-%d_%H-%M-%S-%f}")  # microseconds
    assert hydra_cfg["sweep"]["subdir"] == "${hydra.job.num}"


@pytest.mark.parametrize(
    ("logger", "expected"),
    [("csv", "RunCSVLogger"), ("tensorboard", "TensorBoardLogger"), ("wandb", "WandbLogger"), ("none", None)],
)
def test_logger_groups_instantiate(tmp_path, monkeypatch, logger, expected):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: W&B must fall back to offline
    cfg = compose_train(f"logger={logger}", f"paths.output_dir={tmp_path}", "run_name=test-s0")
    loggers = instantiate_loggers(cfg.get("logger"))
    assert [type(item).__name__ for item in loggers] == ([expected] if expected else [])
    if logger == "wandb":
        assert loggers[0]._wandb_init["mode"] == "offline" and loggers[0]._wandb_init["name"] == "test-s0"


def test_slurm_launcher_runs_one_gpu_per_job():
    launcher = compose_train("hydra/launcher=slurm", hydra_config=True).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1


def test_jobs_of_one_multirun_share_a_logger_group():
    from hydra.types import RunMode

    from neurov1.utils.naming import sweep_group

    hydra_cfg = OmegaConf.create(
        {"mode": RunMode.MULTIRUN, "runtime": {"choices": {"sweep": "single_component"}}, "sweep": {"dir": "/o/2026-x"}}
    )
    assert sweep_group(hydra_cfg) == "single_component/2026-x"
    hydra_cfg.runtime.choices.sweep = None
    assert sweep_group(hydra_cfg) == "multirun/2026-x"
    hydra_cfg.mode = RunMode.RUN
    assert sweep_group(hydra_cfg) is None


def test_the_all_set_is_its_yaml_for_the_bench_and_the_sweeper():
    from hydra_plugins.neurov1_sweepers.backward_elimination import BackwardEliminationSweeperConf
    from neurov1.bench.model import ALL as BENCH_ALL
    from neurov1.models.sites import preset_components

    composed = components_of(compose_train("+model/components=all"))
    assert preset_components("all") == list(BENCH_ALL) == BackwardEliminationSweeperConf().start == composed == ALL


def test_the_learned_heatmap_preset_is_the_learned_head_with_the_studys_settings():
    node = "model.net.components.cortical_mag.fixation"
    preset = compose_train("+model/components=all", "fixation=learned_heatmap")
    studied = compose_train(
        "+model/components=all", "fixation=learned", f"{node}.prior=none", f"{node}.pool=4", f"{node}.layers=3",
        f"{node}.loss=heatmap", f"{node}.loss_weight=3.0", f"{node}.detach=true", f"{node}.norm=true",
    )  # fmt: skip
    assert OmegaConf.to_container(preset.model.net) == OmegaConf.to_container(studied.model.net)
