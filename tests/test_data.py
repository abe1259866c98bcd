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
    # the worker's ValueError arrives as a ValueError, as in PyTorch (it used to be a RuntimeError)
    with pytest.raises(ValueError, match=r'^Caught ValueError in DataLoader worker process 1\.\n') as e:
        list(DataLoader(bad, batch_size=2, num_workers=2))
    assert 'ValueError: bad sample 23' in str(e.value)
    assert not mp.active_children()


# --- The DataLoader never hangs and keeps the error (issue 12, part 4) ---
import contextlib, gc, os, re, signal, threading, time


class Hung(BaseException):
    "Raised by the alarm: the code under test was still waiting (a BaseException, so no handler eats it)."


@contextlib.contextmanager
def no_hang(seconds=20):
    "Fail instead of hanging forever, and end whatever workers a hung loader left behind."
    def alarm(*_): raise Hung(f"still waiting after {seconds} s: the DataLoader hangs")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try: yield
    except BaseException:
        for p in mp.active_children(): p.terminate(); p.join()
        raise
    finally: signal.alarm(0); signal.signal(signal.SIGALRM, old)


class Fails(Dataset):
    "Sample 5 (in batch 2, worker 0 of 2) fails in the way `how` names."
    def __init__(self, how): self.how = how
    def __len__(self): return 8
    def __getitem__(self, i):
        if i == 5:
            if self.how == 'exit': os._exit(1)
            if self.how == 'value': raise ValueError('bad sample 5')
            if self.how == 'key': raise KeyError('no such key\nin the index')
            if self.how == 'args': raise TwoArgs('needs', 'two')
            if self.how == 'local':
                class Local(Exception): pass
                raise Local('a class the main process cannot unpickle')
            if self.how == 'lambda': return {'x': lambda: i}
            if self.how == 'lock': return {'x': threading.Lock()}
        if self.how == 'block' and i in (4, 5): time.sleep(30)  # batch 2, worker 0's second
        return {'x': np.full(2, i, np.float32)}


class TwoArgs(Exception):
    def __init__(self, a, b): super().__init__(a); self.b = b


class TorchFails(torch.utils.data.Dataset if torch is not None else object):
    def __init__(self, how): self.how = how
    def __len__(self): return 8
    def __getitem__(self, i): return Fails(self.how)[i]


def collect(exc, ds, **kw):
    "The exception that iterating a 2-worker loader over `ds` raises (it must raise `exc`)."
    ours = isinstance(ds, Dataset)
    loader = DataLoader if ours else torch.utils.data.DataLoader
    with no_hang(), pytest.raises(exc) as e:
        it = iter(loader(ds, batch_size=2, num_workers=2, **kw))
        list(it)
    # ours stopped its workers before raising; PyTorch's are stopped when the iterator is collected,
    # so stop them now. (Never terminate them: PyTorch's SIGCHLD handler would raise for a worker
    # killed by a signal, anywhere in this process, while the iterator lives on in the traceback.)
    if ours: assert not mp.active_children()
    else: it._shutdown_workers()
    return e.value


@needs_torch
def test_worker_dying_in_getitem_raises_like_pytorch():
    ours, theirs = collect(RuntimeError, Fails('exit')), collect(RuntimeError, TorchFails('exit'))
    assert re.match(r"^DataLoader worker \(pid\(s\) \d+\) exited unexpectedly$", str(ours)), str(ours)
    # PyTorch says it so when its wait times out; its SIGCHLD handler, if it fires first, says
    # "DataLoader worker (pid N) exited unexpectedly with exit code 1. Details are lost ..."
    assert re.match(r"^DataLoader worker \(pid(\(s\))? \d+\) exited unexpectedly", str(theirs))


def test_worker_killed_from_outside_raises():
    with no_hang():
        it = iter(DataLoader(Fails('block'), batch_size=2, num_workers=2))
        next(it), next(it)
        pid = it.workers[0].pid  # now inside batch 2
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
        with pytest.raises(RuntimeError, match=rf"^DataLoader worker \(pid\(s\) {pid}\) exited unexpectedly$"):
            list(it)
    assert not mp.active_children()


def init_fails(worker_id): raise ValueError(f'init failed in worker {worker_id}')


@needs_torch
def test_worker_init_fn_error_reraised_like_pytorch():
    ours = collect(ValueError, Fails('value'), worker_init_fn=init_fails)
    theirs = collect(ValueError, TorchFails('value'), worker_init_fn=init_fails)
    head = "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
    assert str(theirs).startswith(head) and str(ours).startswith(head)
    assert "ValueError: init failed in worker 0" in str(ours)


@needs_torch
def test_worker_error_keeps_type_traceback_and_batch():
    ours, theirs = collect(ValueError, Fails('value')), collect(ValueError, TorchFails('value'))
    first = "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
    assert str(theirs).startswith(first) and str(ours).startswith(first)
    assert "raise ValueError('bad sample 5')" in str(ours)  # the worker's own traceback
    assert "ValueError: bad sample 5" in str(ours) and "batch 2 (sample indices [4, 5])" in str(ours)
    # KeyError would repr its message (newlines as \n); PyTorch keeps it readable, so do we
    ours, theirs = collect(KeyError, Fails('key')), collect(KeyError, TorchFails('key'))
    assert str(ours).startswith("Caught KeyError in DataLoader worker process 0.\nOriginal Traceback")
    assert str(theirs).startswith("Caught KeyError in DataLoader worker process 0.\nOriginal Traceback")


@needs_torch
def test_exception_that_cannot_be_rebuilt_arrives_as_runtime_error():
    ours, theirs = collect(RuntimeError, Fails('args')), collect(RuntimeError, TorchFails('args'))
    first = "Caught TwoArgs in DataLoader worker process 0.\n"
    assert str(theirs).startswith(first) and str(ours).startswith(first)
    # a class the main process cannot unpickle (PyTorch hangs on it) still arrives, as RuntimeError
    ours = collect(RuntimeError, Fails('local'))
    assert str(ours).startswith("Caught Local in DataLoader worker process 0.\n")
    assert "a class the main process cannot unpickle" in str(ours)


@pytest.mark.parametrize('how, exc, what', [('lambda', Exception, 'lambda'),
                                           ('lock', TypeError, "cannot pickle '_thread.lock' object")])
def test_unpicklable_batch_raises_instead_of_hanging(how, exc, what):
    e = collect(exc, Fails(how), collate_fn=lambda b: b)
    assert what in str(e) and "could not send batch 2 to the main process" in str(e), str(e)
    assert not mp.active_children()


def test_timeout_raises_and_stops_the_busy_worker():
    with no_hang():
        it = iter(DataLoader(Fails('block'), batch_size=2, num_workers=2, timeout=0.3))
        next(it), next(it)
        with pytest.raises(RuntimeError, match=r"^DataLoader timed out after 0.3 seconds$"):
            next(it)
        assert not mp.active_children()  # the sleeping worker was terminated after the grace


@needs_torch
def test_negative_timeout_refused_like_pytorch():
    with pytest.raises(ValueError, match="^timeout option should be non-negative$"):
        torch.utils.data.DataLoader(range(4), timeout=-1)
    with pytest.raises(ValueError, match="^timeout option should be non-negative$"):
        DataLoader(range(4), timeout=-1)


class Big(Dataset):
    "4 MB samples: a batch does not fit in a pipe, so a worker blocks sending it."
    def __len__(self): return 40
    def __getitem__(self, i): return np.zeros((1000, 1000), np.float32)


def test_dropped_iterator_stops_workers_without_killing_them():
    with no_hang():
        it = iter(DataLoader(Big(), batch_size=2, num_workers=2))
        next(it)
        time.sleep(0.2)  # the workers fill the pipes and block on the next batches
        workers = list(it.workers)
        del it; gc.collect()
        # told to stop, each worker exits by itself (code 0), not terminated after a wait (-15)
        assert [w.exitcode for w in workers] == [0, 0]
    assert not mp.active_children()


def test_iterator_copied_into_a_forked_process_leaves_the_workers_alone():
    with no_hang():
        it = iter(DataLoader(Slow(), batch_size=2, num_workers=2))
        first = next(it)
        child = mp.get_context('fork').Process(target=it.__del__)  # as garbage collected in a child
        child.start(); child.join()
        assert [y.tolist() for _, y in [first] + list(it)] == [[i, i + 1] for i in range(0, 24, 2)]


def test_without_select_poll_the_portable_wait_does_the_same(monkeypatch):
    import types, nbtorch.utils.data as data
    monkeypatch.setattr(data, '_select', types.SimpleNamespace())  # as on Windows: no select.poll
    plain = [y.tolist() for _, y in DataLoader(Slow(), batch_size=2)]
    with no_hang():
        assert [y.tolist() for _, y in DataLoader(Slow(), batch_size=2, num_workers=2)] == plain
    collect(RuntimeError, Fails('exit'))
