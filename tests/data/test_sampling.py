"""The training order and augmentation: functions of (seed, epoch, sample) alone, resumable, sharded for DDP."""

import torch

from neurov1.data import DemoDataModule
from neurov1.data.sampling import EpochSampler, sample_random_state


def keys(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_each_epoch_is_a_permutation_drawn_from_the_seed_and_the_epoch():
    sampler = EpochSampler(20, batch_size=4, seed=3)
    first, second = keys(sampler, 0), keys(sampler, 1)
    assert sorted(index for index, _ in first) == list(range(20))
    assert [i for i, _ in first] != [i for i, _ in second]
    assert keys(EpochSampler(20, 4, seed=3), 1) == second  # a new sampler (a new process) draws the same
    assert keys(EpochSampler(20, 4, seed=4), 1) != second
    assert len({seed for _, seed in first + second}) == 40  # every sample of every epoch has its own seed


def test_a_resumed_epoch_continues_after_the_batches_already_trained():
    full = keys(EpochSampler(20, batch_size=4, seed=0), 2)
    resumed = EpochSampler(20, batch_size=4, seed=0)
    resumed.resume(epoch=2, start_batch=3)
    assert list(resumed) == full[12:]
    resumed.set_epoch(3)
    assert list(resumed) == keys(EpochSampler(20, 4, seed=0), 3)  # the next epoch starts at its beginning


def test_data_parallel_processes_share_out_the_same_order():
    single = [index for index, _ in keys(EpochSampler(10, 2, seed=1), 5)]
    shards = [[i for i, _ in keys(EpochSampler(10, 2, seed=1, num_replicas=3, rank=r), 5)] for r in range(3)]
    assert [len(shard) for shard in shards] == [4, 4, 4]  # padded by repeating the start of the order
    interleaved = [shard[k] for k in range(4) for shard in shards]
    assert interleaved[:10] == single and interleaved[10:] == single[:2]


def test_a_samples_random_augmentation_depends_only_on_its_seed():
    torch.manual_seed(0)
    with sample_random_state(123):
        first = torch.rand(3)
    outside = torch.rand(1)
    torch.manual_seed(0)
    torch.rand(5)  # a different global state
    with sample_random_state(123):
        second = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(first, second) and torch.equal(torch.rand(1), outside)  # the global RNG is left untouched


def test_demo_flips_follow_the_sample_seed_not_the_process():
    module = DemoDataModule(num_classes=2, train_per_class=4, val_per_class=2, batch_size=4)
    module.setup("fit")
    dataset = module.train_dataset
    flips = {seed: dataset[(0, seed)][0] for seed in range(8)}
    original = (dataset.images[0].float() / 255 - 0.5) / 0.5
    assert {torch.equal(image, original) for image in flips.values()} == {True, False}  # both outcomes occur
    torch.manual_seed(99)
    assert all(torch.equal(dataset[(0, seed)][0], image) for seed, image in flips.items())
