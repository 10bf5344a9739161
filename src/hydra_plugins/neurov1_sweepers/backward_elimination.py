"""``hydra/sweeper=backward_elimination``: greedy backward elimination, one launcher batch per round.

Selected by ``sweep=backward_elimination`` (``conf/sweep/backward_elimination.yaml``). Each round's runs (every set
with one component removed, times the seeds) go to the configured launcher as one batch, so they run in parallel
with ``hydra/launcher=joblib`` or ``hydra/launcher=slurm``. The rounds themselves are computed by
:mod:`neurov1.sweeps.elimination` from the finished runs in the sweep folder, which makes rerunning the same
command resume
an interrupted elimination. When it is done, the trace is recorded in the results ledger for ``neurov1.report``.
"""

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from neurov1.models.sites import preset_components
from neurov1.results.ledger import write_record
from neurov1.sweeps import elimination

log = logging.getLogger(__name__)


@dataclass
class BackwardEliminationSweeperConf:
    _target_: str = "hydra_plugins.neurov1_sweepers.backward_elimination.BackwardEliminationSweeper"
    # The paper's start set (Sec. 4.2): model/components=all, every component but divisive normalization.
    start: list[str] = field(default_factory=lambda: preset_components("all"))
    metric: str = "v1/overall"  # any logged metric: v1/property, val/acc1, corruption/mean_accuracy, ...
    mode: str = "max"  # max | min
    seeds: list[int] = field(default_factory=lambda: [0])  # averaged per set before choosing
    min_components: int = 1
    name: str = "default"  # names the sweep folder: another name starts another elimination


ConfigStore.instance().store(group="hydra/sweeper", name="backward_elimination", node=BackwardEliminationSweeperConf)


class BackwardEliminationSweeper(Sweeper):
    def __init__(
        self, start: list[str], metric: str, mode: str, seeds: list[int], min_components: int, name: str
    ) -> None:
        self.settings = elimination.Settings(tuple(start), metric, mode, tuple(seeds), min_components)
        self.name = name
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> elimination.Trace:
        elimination.check_arguments(arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir).absolute()  # run dirs are compared with the ledger's
        elimination.check_same_arguments(sweep_dir, arguments)
        first_job = self._job_config(arguments, elimination.components_override(self.settings.start), "seed=0")
        elimination.check_metric_is_logged(self.settings, OmegaConf.to_container(first_job.callbacks or {}))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        trace = self._update(sweep_dir, arguments)
        while not trace.done:
            failed = self._launch_round(sweep_dir, trace, arguments)
            trace = self._update(sweep_dir, arguments)
            if failed is not None:
                _ = failed.return_value  # raises the job's error; the finished runs are kept for the rerun
        log.info("Backward elimination done: %s; trace in %s", "+".join(trace.final), sweep_dir / "elimination.md")
        record = {"sweep_dir": str(sweep_dir), "name": self.name, "settings": asdict(self.settings)}
        write_record(self.config.paths.results_dir, "elimination", None, {**record, "rounds": trace.rounds})
        return trace

    def _update(self, sweep_dir: Path, arguments: list[str]) -> elimination.Trace:
        """Replay the elimination on the finished runs and save its state."""
        trace = elimination.eliminate(self.settings, elimination.finished_runs(sweep_dir))
        elimination.write_state(sweep_dir, trace, arguments)
        return trace

    def _job_config(self, arguments: list[str], *overrides: str) -> DictConfig:
        return self.hydra_context.config_loader.load_sweep_config(self.config, [*arguments, *overrides])

    def _launch_round(self, sweep_dir: Path, trace: elimination.Trace, arguments: list[str]) -> JobReturn | None:
        """Launch the pending runs as one batch; returns the first failed job, if any."""
        batch = [[*arguments, elimination.components_override(s), f"seed={seed}"] for s, seed in trace.pending]
        self.validate_batch_is_legal(batch)
        log.info(
            "Backward elimination round %d: %d runs (%s)",
            len(trace.rounds),
            len(batch),
            ", ".join(f"{'+'.join(s)} s{seed}" for s, seed in trace.pending),
        )
        returns = self.launcher.launch(batch, initial_job_idx=elimination.next_job_number(sweep_dir))
        return next((job for job in returns if job.status == JobStatus.FAILED), None)
