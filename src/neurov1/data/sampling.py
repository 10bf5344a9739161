"""The order and the random augmentation of training samples, as functions of (seed, epoch, sample) alone.

A resumed process cannot reproduce the global random state that an interrupted one had reached, and with
DataLoader workers that state also depends on which worker loads which sample. So the training order of an epoch
is a permutation drawn from the run's seed and the epoch number, and every sample of it carries a seed of its own
for its random crop and flip (:func:`sample_random_state`). A run resumed from a checkpoint taken in the middle of
an epoch skips the batches it had already trained (:meth:`EpochSampler.resume`; the position is saved with the data
module's state) and then sees exactly the batches the uninterrupted run saw, whatever the number of workers.
"""

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

SampleKey = tuple[int, int]  # (dataset index, seed of the sample's random augmentation)


_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def _mix64(value: int) -> int:
    """One step of splitmix64: a bijection of 64-bit integers that spreads every input bit over the output."""
    value = (value + _GOLDEN_GAMMA) & _MASK64
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & _MASK64
    return value ^ (value >> 31)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of the random augmentation of sample ``index`` in ``epoch`` of a run seeded ``seed`` (< 2**63)."""
    return _mix64(_mix64(_mix64(seed & _MASK64) ^ (epoch & _MASK64)) ^ (index & _MASK64)) >> 1


class EpochSampler(Sampler[SampleKey]):
    """Yields ``(index, sample seed)``: epoch ``e`` in the order ``permutation(seed, e)`` (or in dataset order).

    Under data-parallel training each of ``num_replicas`` processes takes every ``num_replicas``-th sample
    (the order is padded by repeating its start so that all get as many, as torch's DistributedSampler does).
    ``len`` is the whole epoch's share; a resumed epoch yields only what was left.
    """

    def __init__(
        self, size: int, batch_size: int, seed: int, shuffle: bool = True, num_replicas: int = 1, rank: int = 0
    ) -> None:
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.start_batch = 0

    def __len__(self) -> int:
        return math.ceil(self.size / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch start; a new epoch starts at its first batch."""
        if epoch != self.epoch:
            self.epoch, self.start_batch = epoch, 0

    def resume(self, epoch: int, start_batch: int) -> None:
        """Continue epoch ``epoch`` at batch ``start_batch`` (of this process's share)."""
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[SampleKey]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
        total = len(self) * self.num_replicas
        mine = np.resize(order, total)[self.rank :: self.num_replicas]
        start, self.start_batch = self.start_batch * self.batch_size, 0
        for index in mine[start:].tolist():
            yield index, sample_seed(self.seed, self.epoch, index)


def split_key(key: int | SampleKey) -> tuple[int, int | None]:
    """``(index, seed)`` of a sampler key; a plain index (validation, analyses) has no seed."""
    return (key, None) if isinstance(key, int | np.integer) else (int(key[0]), int(key[1]))


@contextlib.contextmanager
def sample_random_state(seed: int | None) -> Iterator[None]:
    """Run the block with torch's CPU RNG seeded by ``seed`` and restore its state afterwards (no-op for None).

    torchvision's random transforms draw from that RNG, so a sample's crop and flip depend on its seed only. (Only
    the CPU generator is touched: ``torch.manual_seed`` would also visit every accelerator, 60x slower per sample.)
    """
    if seed is None:
        yield
        return
    generator = torch.default_generator
    state = generator.get_state()
    generator.manual_seed(seed)
    try:
        yield
    finally:
        generator.set_state(state)


def data_position(trainer: Any) -> dict[str, int]:
    """Where training stands in the data order: the epoch and how many of its batches were trained.

    Saved with every checkpoint; at the end of an epoch it is the next epoch's start.
    """
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    epoch = trainer.current_epoch
    if done >= trainer.num_training_batches:
        return {"epoch": epoch + 1, "batch": 0}
    return {"epoch": epoch, "batch": done}
