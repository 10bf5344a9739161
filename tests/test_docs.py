"""The documentation site (docs/, mkdocs.yml): its examples are the code the suite runs, its reference is complete.

The how-to pages include the files of tests/plugins/ (pymdownx.snippets), so what a reader copies is what these tests
train and evaluate; the configuration reference is generated from conf/ at build time (docs/hooks/), and the schemas
of the output files are checked against the code that writes them.
"""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from neurov1.results.ledger import load_records

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
PLUGINS = REPO / "tests" / "plugins"
SEARCHPATH = f"hydra.searchpath=[file://{PLUGINS / 'conf'}]"


def compose_command(config: str, *overrides: str, out: Path):
    """The config a ``python -m neurov1.<config>`` command composes, writing into ``out`` (no Hydra run folder)."""
    paths = (f"paths.log_dir={out}", f"paths.output_dir={out / 'run'}", f"paths.results_dir={out / 'results'}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config, overrides=[*overrides, *paths])


def test_the_evaluation_kind_example_scores_a_model(tmp_path, monkeypatch):
    """tests/plugins/contrast_response.py, selected with eval=contrast_response from its own config folder."""
    from neurov1.evaluate import evaluate

    monkeypatch.syspath_prepend(str(PLUGINS))
    components = "+model/components=[center_surround,tuned_norm]"
    cfg = compose_command(
        "evaluate",
        SEARCHPATH,
        "eval=contrast_response",
        "ckpt_path=null",
        "model.net.arch=resnet18",
        components,
        out=tmp_path,
    )
    outcome = evaluate(cfg)
    result = json.loads((tmp_path / "run" / "contrast_response.json").read_text())
    assert result["layer"] == "layer1" and len(result["mean_response"]) == 7
    assert result["model"] == "resnet18-center_surround+tuned_norm-untrained"
    assert outcome.metrics["contrast/gain"] == pytest.approx(result["mean_response"][-1] - result["mean_response"][0])
    (record,) = load_records(tmp_path / "results")
    assert record["eval"] == "contrast_response" and record["metrics"] == outcome.metrics


def test_the_evaluation_kind_example_checks_its_settings(monkeypatch):
    from neurov1.errors import ConfigError

    monkeypatch.syspath_prepend(str(PLUGINS))
    from contrast_response import ContrastResponse

    with pytest.raises(ConfigError, match="eval.contrasts"):
        ContrastResponse(contrasts=[0.5, 0.1])


def test_the_dataset_example_trains_a_model(tmp_path, monkeypatch):
    """tests/plugins/oriented_gratings.py, selected with data=oriented_gratings from its own config folder."""
    from neurov1.train import train

    monkeypatch.syspath_prepend(str(PLUGINS))
    cfg = compose_command(
        "train",
        "experiment=demo",
        SEARCHPATH,
        "data=oriented_gratings",
        "data.train_per_class=8",
        "data.val_per_class=4",
        "trainer.max_epochs=1",
        "model.scheduler.milestones=[1]",
        "+model/components=[tuned_norm]",
        "~callbacks.progress_bar",
        "~callbacks.model_summary",
        out=tmp_path,
    )
    metrics = train(cfg)
    assert metrics["status"] == "completed" and metrics["data"]["name"] == "OrientedGratingsDataModule"
    assert metrics["data"]["num_classes"] == 4 and metrics["global_step"] == 2
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
