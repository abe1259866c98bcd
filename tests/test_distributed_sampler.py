"""DistributedSampler (issue 17) against PyTorch's: the same indices for every rank, without and
with shuffling (nbtorch's permutation is NumPy's, so the shuffled case maps PyTorch's unshuffled
positions through it), padding and drop_last, for datasets that divide evenly and that do not."""
import itertools
import numpy as np
import pytest
import nbtorch
from nbtorch.utils.data import DistributedSampler
from helpers import needs_torch, torch

pytestmark = needs_torch
CASES = list(itertools.product([1, 2, 5, 10, 12, 13], [1, 2, 3, 4, 7], [False, True]))


@pytest.mark.parametrize('n,replicas,drop_last', CASES)
def test_unshuffled_indices_are_pytorchs(n, replicas, drop_last):
    from torch.utils.data.distributed import DistributedSampler as Theirs
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = Theirs(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert (list(ours), len(ours), ours.total_size) == \
            (list(theirs), len(theirs), theirs.total_size)


@pytest.mark.parametrize('n,replicas,drop_last', CASES)
def test_shuffled_indices_are_pytorchs_through_our_permutation(n, replicas, drop_last):
    from torch.utils.data.distributed import DistributedSampler as Theirs
    for epoch, rank in itertools.product([0, 3], range(replicas)):
        ours = DistributedSampler(range(n), replicas, rank, seed=7, drop_last=drop_last)
        ours.set_epoch(epoch)
        perm = np.random.default_rng(7 + epoch).permutation(n)
        positions = Theirs(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == [int(perm[i]) for i in positions]


def test_epochs_differ_and_ranks_partition_the_permutation():
    s = [DistributedSampler(range(100), 4, r) for r in range(4)]
    first = [list(x) for x in s]
    assert sorted(sum(first, [])) == list(range(100))
    for x in s: x.set_epoch(1)
    assert [list(x) for x in s] != first


def test_errors_and_names():
    with pytest.raises(ValueError, match=r'Invalid rank 4, rank should be in the interval \[0, 3'):
        DistributedSampler(range(8), 4, 4)
    import nbtorch.utils.data.distributed as m
    assert m.DistributedSampler is nbtorch.utils.data.DistributedSampler is DistributedSampler
