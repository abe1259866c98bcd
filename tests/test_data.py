"utils.data against PyTorch: the same batches for the same sampler order, collation, samplers, workers."
import multiprocessing as mp
import numpy as np
import pytest
import nbtorch
from nbtorch.utils.data import (Dataset, IterableDataset, TensorDataset, Subset, ConcatDataset, random_split,
                                SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler,
                                BatchSampler, DataLoader, default_collate, Generator)
from helpers import needs_torch, compare, torch

X = np.arange(60, dtype=np.float32).reshape(20, 3)
Y = np.arange(20)


def both_loaders(**kw):
    o = DataLoader(TensorDataset(nbtorch.tensor(X), nbtorch.tensor(Y)), **kw)
    r = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(Y)), **kw)
    return list(o), list(r)


@needs_torch
@pytest.mark.parametrize('kw', [dict(batch_size=4), dict(batch_size=6), dict(batch_size=6, drop_last=True),
                                dict(batch_size=None), dict(batch_size=3, sampler=[5, 1, 19, 0, 7, 7, 2]),
                                dict(batch_sampler=[[3, 1], [0, 4, 5], [19]])], ids=str)
def test_same_batches_as_pytorch(kw):
    o, r = both_loaders(**kw)
    assert len(o) == len(r)
    for a, b in zip(o, r): compare(list(a), list(b))


@needs_torch
def test_len_matches_pytorch():
    for kw in [dict(batch_size=4), dict(batch_size=6, drop_last=True), dict(batch_size=7), dict(batch_size=None)]:
        o = DataLoader(TensorDataset(nbtorch.tensor(X)), **kw)
        r = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(X)), **kw)
        assert len(o) == len(r), kw


class Items(Dataset):
    "Samples of every kind default_collate handles."
    def __len__(self): return 6
    def __getitem__(self, i):
        return dict(img=np.full((2, 2), i, np.float32), label=i, score=i / 2, name=f's{i}', flag=i % 2 == 0,
                    pair=(i, [i * 1.5, i]), t=np.int16(i))


class TorchItems(torch.utils.data.Dataset if torch is not None else object):
    def __len__(self): return 6
    def __getitem__(self, i): return Items()[i]


@needs_torch
def test_default_collate_matches_pytorch():
    o = next(iter(DataLoader(Items(), batch_size=3)))
    r = next(iter(torch.utils.data.DataLoader(TorchItems(), batch_size=3)))
    assert list(o) == list(r)
    for k in ['img', 'label', 'score', 'flag', 't']: compare(o[k], r[k], path=k)
    assert o['name'] == r['name']
    compare(o['pair'][0], r['pair'][0]); compare(o['pair'][1][0], r['pair'][1][0])
    batch = [(nbtorch.ones(2) * i, i) for i in range(3)]
    x, y = default_collate(batch)
    assert x.shape == (3, 2) and y.dtype is nbtorch.int64


@needs_torch
def test_samplers_like_pytorch():
    assert list(SequentialSampler(range(7))) == list(torch.utils.data.SequentialSampler(range(7)))
    for bs, dl in [(3, False), (3, True), (7, False), (10, True)]:
        assert list(BatchSampler(range(7), bs, dl)) == list(torch.utils.data.BatchSampler(range(7), bs, dl))
        assert len(BatchSampler(range(7), bs, dl)) == len(torch.utils.data.BatchSampler(range(7), bs, dl))
    assert sorted(RandomSampler(range(9))) == list(range(9))
    r = list(RandomSampler(range(3), replacement=True, num_samples=300, generator=Generator().manual_seed(0)))
    assert len(r) == 300 and set(r) == {0, 1, 2}
    assert len(list(RandomSampler(range(4), num_samples=10))) == 10
    assert sorted(SubsetRandomSampler([7, 3, 5])) == [3, 5, 7]
    w = list(WeightedRandomSampler([1., 0., 3.], 4000, generator=Generator().manual_seed(1)))
    assert 1 not in w and abs(w.count(2) / 4000 - 0.75) < 0.03
    with pytest.raises(ValueError): BatchSampler(range(3), 0, False)


def test_generator_makes_order_reproducible():
    ds = TensorDataset(nbtorch.arange(50))
    run = lambda s: [b[0].tolist() for b in DataLoader(ds, batch_size=8, shuffle=True, generator=Generator().manual_seed(s))]
    assert run(3) == run(3) and run(3) != run(4)


@needs_torch
def test_random_split_lengths_like_pytorch():
    for n, lengths in [(10, [0.7, 0.3]), (1797, [0.7, 0.15, 0.15]), (11, [0.5, 0.5]), (9, [3, 6])]:
        o = random_split(range(n), lengths, generator=Generator().manual_seed(0))
        r = torch.utils.data.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
        assert [len(s) for s in o] == [len(s) for s in r]
        assert sorted(i for s in o for i in s.indices) == list(range(n))
    with pytest.raises(ValueError): random_split(range(5), [2, 2])


def test_subset_concat_iterable():
    ds = TensorDataset(nbtorch.arange(10))
    s = Subset(ds, [9, 0, 5])
    assert [s[i][0].item() for i in range(3)] == [9, 0, 5]
    c = ConcatDataset([s, ds])
    assert len(c) == 13 and c[3][0].item() == 0 and c[-1][0].item() == 9
    class Stream(IterableDataset):
        def __iter__(self): return iter(range(7))
        def __len__(self): return 7
    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]


class Slow(Dataset):
    "Later samples are faster, so workers finish out of order."
    def __len__(self): return 24
    def __getitem__(self, i):
        import time
        time.sleep(0.002 * (24 - i) / 8)
        if i == 23 and getattr(self, 'fail', False): raise ValueError('bad sample 23')
        return np.full(2, i, np.float32), i


def test_workers_keep_order_and_shut_down():
    plain = [(x.tolist(), y.tolist()) for x, y in DataLoader(Slow(), batch_size=2)]
    for nw in [1, 2, 3]:
        got = [(x.tolist(), y.tolist()) for x, y in DataLoader(Slow(), batch_size=2, num_workers=nw)]
        assert got == plain, nw
        assert not mp.active_children()
    it = iter(DataLoader(Slow(), batch_size=2, num_workers=2))
    next(it); next(it)
    it.shutdown()  # abandoning the iterator mid-way stops its workers
    assert not mp.active_children()
    bad = Slow(); bad.fail = True
    with pytest.raises(RuntimeError, match='ValueError: bad sample 23 in DataLoader worker process'):
        list(DataLoader(bad, batch_size=2, num_workers=2))
    assert not mp.active_children()
