"""Backward elimination: the greedy rounds replayed from finished runs (the sweeper end to end: test_sweeps)."""

import json

import pytest

from neurov1.errors import ConfigError
from neurov1.sweeps import elimination
from neurov1.sweeps.elimination import Settings, eliminate, finished_runs

START = ("center_surround", "tuned_norm", "cortical_mag")


def fake_run(sweep_dir, job, components, seed, accuracy, status="completed", **final):
    """A run folder as a finished training run leaves it (only the fields elimination reads)."""
    metrics = {
        "components": list(components),
        "seed": seed,
        "status": status,
        "best": {"monitor": "val/acc1", "value": accuracy},
        "final": {"val/acc1": accuracy, "train/loss": 1.0, **final},
    }
    (sweep_dir / str(job)).mkdir(parents=True)
    (sweep_dir / str(job) / "metrics.json").write_text(json.dumps(metrics))


def complete(sweep_dir, settings, score):
    """Finish every pending run (score(components, seed) gives its accuracy) round by round; returns the trace."""
    trace = eliminate(settings, finished_runs(sweep_dir))
    while not trace.done:
        for components, seed in trace.pending:
            fake_run(sweep_dir, elimination.next_job_number(sweep_dir), components, seed, score(components, seed))
        trace = eliminate(settings, finished_runs(sweep_dir))
    return trace


def test_rounds_keep_the_best_removal_down_to_one_component(tmp_path):
    settings = Settings(START, metric="val/acc1")
    trace = eliminate(settings, {})
    first = [START, *[tuple(c for c in START if c != r) for r in START]]
    assert [components for components, _ in trace.pending] == first  # the start set and every one-removed set

    # each component adds a fixed amount, except that removing tuned_norm first helps
    worth = {"center_surround": 0.1, "tuned_norm": -0.05, "cortical_mag": 0.2}
    trace = complete(tmp_path, settings, lambda components, seed: 0.5 + sum(worth[c] for c in components))
    assert [entry["removed"] for entry in trace.rounds] == ["tuned_norm", "center_surround"]
    assert trace.final == ("cortical_mag",)
    assert trace.rounds[0]["current_score"]["mean"] == pytest.approx(0.75)
    assert trace.rounds[1]["current_score"]["mean"] == pytest.approx(0.8)  # the round-0 pick
    assert len(list(tmp_path.glob("*/metrics.json"))) == 4 + 2  # nothing evaluated twice


def test_seeds_are_averaged_before_choosing(tmp_path):
    settings = Settings(START[:2], metric="val/acc1", seeds=(0, 1))
    # seed 0 alone would remove tuned_norm (0.9 > 0.6); the mean over both seeds removes center_surround
    scores = {(("tuned_norm",), 0): 0.6, (("tuned_norm",), 1): 0.9, (("center_surround",), 0): 0.9}
    trace = complete(tmp_path, settings, lambda components, seed: scores.get((components, seed), 0.1))
    assert trace.rounds[0]["removed"] == "center_surround"
    kept = next(c for c in trace.rounds[0]["candidates"] if c["removed"] == "center_surround")
    assert kept["mean"] == pytest.approx(0.75) and kept["std"] == pytest.approx(0.15) and len(kept["runs"]) == 2


def test_mode_min_and_ties(tmp_path):
    settings = Settings(START, metric="train/loss", mode="min", min_components=2)
    trace = complete(tmp_path, settings, lambda components, seed: 0.5)
    assert len(trace.rounds) == 1 and trace.rounds[0]["removed"] == "center_surround"  # a tie: the first one


def test_unfinished_runs_are_run_again_and_job_numbers_are_not_reused(tmp_path):
    settings = Settings(START[:2], metric="val/acc1")
    fake_run(tmp_path, 0, START[:2], 0, 0.5)
    fake_run(tmp_path, 1, START[:1], 0, 0.9, status="interrupted")
    (tmp_path / "2").mkdir()  # a run killed before it wrote anything
    trace = eliminate(settings, finished_runs(tmp_path))
    assert sorted(trace.pending) == sorted([(START[:1], 0), (START[1:2], 0)])
    assert elimination.next_job_number(tmp_path) == 3


def test_a_metric_the_runs_did_not_log_is_named_with_the_alternatives(tmp_path):
    settings = Settings(START[:2], metric="val/acc")
    with pytest.raises(ConfigError, match=r"hydra.sweeper.metric=val/acc: run .* Did you mean 'val/acc1'"):
        complete(tmp_path, settings, lambda components, seed: 0.5)
    with pytest.raises(ConfigError, match="callbacks=v1"):
        elimination.check_metric_is_logged(Settings(START), {"checkpoint": {}})
    elimination.check_metric_is_logged(Settings(START), {"v1": {}})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"start": ("tuned_norm", "tuned_norm")}, "twice"),
        ({"start": ("divisive_norm", "tuned_norm")}, "cannot be combined"),
        ({"start": ("center_surround", "tuned_norm"), "min_components": 2}, "min_components=2"),
        ({"start": START, "seeds": ()}, "seeds"),
        ({"start": START, "mode": "best"}, "mode"),
        ({"start": ("center_surround", "v1_magic")}, "v1_magic"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        Settings(**settings)


@pytest.mark.parametrize("argument", ["+model/components=all", "seed=3", "model.optimizer.lr=0.1,0.2"])
def test_overrides_the_sweeper_sets_itself_are_refused(argument):
    with pytest.raises(ConfigError, match="model/components|seed|sweep inside"):
        elimination.check_arguments(["experiment=demo", argument])
