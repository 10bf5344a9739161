"""Where to look, end to end: each fixation policy trains on the off-centre demo, logs its fixation error, saves a
checkpoint that reloads with ``weights_only=True`` and resumes faithfully, and is scored with the gaze pinned."""

import json

import pytest
import torch

from conftest import TINY_DEMO, run_dirs, run_module
from neurov1.training.module import NeuroV1Module

POLICY_RUN = (
    *(o for o in TINY_DEMO if not o.startswith(("trainer.max_epochs", "model.scheduler"))),
    "data.placement=random",
    "+model/components=cortical_mag",
    "model.scheduler.milestones=[1]",
    "model.optimizer.lr=0.01",
    "model.glimpses=2",
)


def train(log_dir, policy, *overrides):
    run_module("neurov1.train", *POLICY_RUN, f"fixation={policy}", *overrides, log_dir=log_dir)
    return run_dirs(log_dir)[-1]


@pytest.mark.parametrize(
    ("choice", "policy"),
    [
        ("center", "center"),
        ("saliency", "saliency"),
        ("given", "given"),
        ("learned_heatmap", "learned_heatmap_no_prior"),
    ],
)
def test_each_policy_trains_logs_its_fixation_error_and_reloads_with_weights_only(tmp_path, choice, policy):
    run_dir = train(tmp_path, choice, "trainer.max_epochs=1")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["fixation"] == policy and metrics["status"] == "completed"
    error = metrics["final"]["val/fixation_error"]
    assert (error == 0.0) if policy == "given" else (0 < error < 8)  # degrees; the image spans 8
    assert 0 <= metrics["final"]["val/acc1_glimpses"] <= 1
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    node = saved["hyper_parameters"]["net"]["components"]["cortical_mag"]
    assert ("fixation" in node) == (policy != "center")
    model = NeuroV1Module.load_from_checkpoint(checkpoint, map_location="cpu")
    assert model.fixation_policy == policy
    model.load_state_dict(saved["state_dict"])  # strict: every key of the policy's state
    if policy == "given":  # eval=accuracy: one fixation and glimpses, on the checkpoint's data
        evaluation = ("eval=accuracy", "eval.glimpses=3", "eval.rule=confident")
        run_module("neurov1.evaluate", f"ckpt_path={checkpoint}", *evaluation, log_dir=tmp_path)
        (path,) = tmp_path.rglob("accuracy.json")
        result = json.loads(path.read_text())
        assert result["fixation"] == "given" and result["fixation_error_degrees"] == 0.0
        assert (result["glimpses"], result["rule"]) == (3, "confident")
        assert result["acc1"] == pytest.approx(metrics["final"]["val/acc1"]) and 0 <= result["acc1_glimpses"] <= 1


@pytest.mark.e2e
def test_learned_fixation_resumes_faithfully_and_is_scored_with_the_gaze_pinned(tmp_path, stimulus_cache):
    reference = train(tmp_path / "reference", "learned", "trainer.max_epochs=2")
    interrupted = train(tmp_path / "resumed", "learned", "trainer.max_epochs=1")
    last = interrupted / "checkpoints" / "last.ckpt"
    run_module(
        "neurov1.train", *POLICY_RUN, "fixation=learned", "trainer.max_epochs=2", f"ckpt_path={last}",
        log_dir=tmp_path / "resumed",
    )  # fmt: skip
    expected = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    actual = torch.load(last, weights_only=True)["state_dict"]
    assert expected.keys() == actual.keys() and any("fixation.hidden" in key for key in actual)
    assert max((expected[k].double() - actual[k].double()).abs().max().item() for k in expected) <= 1e-5
    wanted = json.loads((reference / "metrics.json").read_text())["final"]
    got = json.loads((interrupted / "metrics.json").read_text())["final"]
    for key in ("val/acc1", "val/fixation_error", "train/fixation_loss_epoch"):
        assert got[key] == pytest.approx(wanted[key], abs=1e-5), key

    overrides = [
        f"ckpt_path={last}",
        "eval=v1_probe",
        "eval.source=offline",
        "eval.benchmarks=[Marques2020_DeValois1982-pref_or]",
        f"eval.cache_dir={stimulus_cache}",
    ]
    run_module("neurov1.evaluate", *overrides, log_dir=tmp_path / "eval")
    (path,) = (tmp_path / "eval").rglob("v1_probe.json")
    report = json.loads(path.read_text())
    assert report["gaze"] == "center" and report["scores"]["v1_property"] is not None


def test_a_policy_without_the_cortical_magnification_is_one_line(tmp_path):
    result = run_module(
        "neurov1.train", *TINY_DEMO, "fixation=learned", log_dir=tmp_path, check=False
    )  # fmt: skip
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "fixation" in line]
    assert len(lines) == 1 and "+model/components=cortical_mag" in lines[0]
