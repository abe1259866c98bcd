"""The traps a first run on a real GPU falls into, each checked on the stand-in GPU.

Printing a big CUDA tensor, pinned memory and DataLoader workers, checkpoints moved between devices
with every `map_location`, random numbers on the device, dtype defaults, and accumulating scatters
(CuPy's `cupyx.scatter_add`, which CUDA's atomicAdd limits to a few dtypes).
"""
import contextlib
import io
import pickle
import re
import sys
import types
import warnings
import numpy as np
import pytest
import nbtorch
import nbtorch.nn.functional as F
from nbtorch import cuda
from nbtorch.utils.data import DataLoader, TensorDataset
from helpers import needs_torch, torch
import standin


@contextlib.contextmanager
def _reads():
    "The stand-in's count of reads by the host; on a real GPU none is counted (`count` is None)."
    if cuda._backend() is not standin.module:
        yield types.SimpleNamespace(count=None, nbytes=None, log=[])
        return
    with standin.transfers() as t: yield t


@pytest.fixture
def cpu_only():
    "A machine without a GPU (or CuPy), as PyTorch's CPU-only build sees it."
    saved = cuda._cupy, cuda._cupyx
    cuda._set_backend(None, None)
    yield
    cuda._set_backend(*saved)


def _on_device(t): return cuda._on_gpu(t._data)


# ---- printing ------------------------------------------------------------------------------------
SHAPES = [(100, 100), (2000,), (3, 400, 5), (7, 7, 7, 7), (2, 2000, 1), (30, 40)]


@needs_torch
@pytest.mark.parametrize('shape', SHAPES)
def test_a_big_gpu_tensor_prints_as_pytorch_sending_only_its_edges(any_gpu, shape):
    "PyTorch's summary with `device='cuda:0'`, made from the printed edges alone, not all of it."
    nbtorch.manual_seed(0)
    x = nbtorch.randn(*shape)
    with _reads() as t: s = repr(x.cuda())
    ref = repr(torch.tensor(x.numpy()))[:-1]  # PyTorch's CPU text, then the device as it adds it
    last = len(ref) - ref.rfind('\n') + 1
    sep = ', ' if last + len("device='cuda:0'") + 2 <= 80 else ',\n       '
    assert s == ref + sep + "device='cuda:0')"
    edges = np.prod([min(n, 6) for n in shape]) * 4
    assert t.count is None or (t.count == 1 and t.nbytes == edges < x.numel() * 4), t


def test_small_and_special_gpu_tensors_print_with_one_transfer(any_gpu):
    for x, text in [(nbtorch.tensor(3.5), "tensor(3.5000, device='cuda:0')"),
                    (nbtorch.arange(5) > 2,
                     "tensor([False, False, False,  True,  True], device='cuda:0')"),
                    (nbtorch.zeros(2, 0), "tensor([], device='cuda:0', size=(2, 0))"),
                    (nbtorch.ones(2000).half(),
                     "tensor([1., 1., 1.,  ..., 1., 1., 1.], device='cuda:0', "
                     "dtype=torch.float16)")]:
        with _reads() as t: s = repr(x.cuda())
        assert s == text, s
        assert t.count in (None, 0 if x.numel() == 0 else 1), t
        assert str(x.cuda()) == s
    loss = nbtorch.tensor(0.25, device='cuda')
    with _reads() as t: line = f'loss {loss:.3f}'
    assert line == 'loss 0.250' and t.count in (None, 1)  # a format spec reads the number: once


# ---- pinned memory and the DataLoader ------------------------------------------------------------
def test_pinning_on_a_cpu_only_machine_is_pytorchs(cpu_only):
    "PyTorch's CPU-only build: nothing is pinned, pinning raises, a pinning loader warns, goes on."
    x = nbtorch.arange(6.)
    assert x.is_pinned() is False
    with pytest.raises(RuntimeError, match='Cannot access accelerator device when none is'):
        x.pin_memory()
    with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no accelerator"):
        batches = list(DataLoader(TensorDataset(x, x), batch_size=4, pin_memory=True))
    assert [b[0].tolist() for b in batches] == [[0., 1., 2., 3.], [4., 5.]]
    assert not any(t.is_pinned() for b in batches for t in b)


@needs_torch
def test_pinning_matches_pytorchs_cpu_only_build(cpu_only):
    assert torch.randn(3).is_pinned() is nbtorch.randn(3).is_pinned() is False
    with pytest.raises(RuntimeError) as ref: torch.randn(3).pin_memory()
    with pytest.raises(RuntimeError) as ours: nbtorch.randn(3).pin_memory()
    assert str(ours.value) == str(ref.value)


def test_pinning_with_a_gpu(any_gpu):
    x = nbtorch.arange(6.)
    p = x.pin_memory()
    assert p.is_pinned() and not x.is_pinned() and p.pin_memory() is p and p.tolist() == x.tolist()
    assert not p.cuda().is_pinned()
    with pytest.raises(RuntimeError, match="cannot pin 'torch.cuda.FloatTensor' only dense CPU"):
        x.cuda().pin_memory()


@pytest.mark.parametrize('num_workers', [0, 2])
def test_pinned_batches_from_workers_go_to_the_gpu_without_a_read(any_gpu, num_workers):
    "Workers collate on the CPU, the main process pins, `.to('cuda', non_blocking=True)` moves."
    x = nbtorch.arange(40.).reshape(20, 2)
    y = nbtorch.arange(20)
    dl = DataLoader(TensorDataset(x, y), batch_size=8, num_workers=num_workers, pin_memory=True)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a GPU is there: no warning
        for xb, yb in dl:
            assert xb.is_pinned() and yb.is_pinned() and not xb.is_cuda
            with _reads() as t:
                xb, yb = xb.to('cuda', non_blocking=True), yb.to('cuda', non_blocking=True)
                z = (xb.sum(1) + yb).float()
            assert t.count in (None, 0) and _on_device(z) and z.device == nbtorch.device('cuda:0')
            seen.append(z.cpu())
    assert nbtorch.cat(seen).tolist() == (x.sum(1) + y).tolist()


def test_pinning_walks_the_batch(any_gpu):
    from collections import namedtuple
    P = namedtuple('P', 'a b')
    ds = [dict(x=nbtorch.ones(2), pair=P(nbtorch.zeros(1), [nbtorch.arange(3)]), n=1)] * 4
    b = next(iter(DataLoader(ds, batch_size=2, pin_memory=True)))
    assert b['x'].is_pinned() and b['pair'].a.is_pinned() and b['pair'].b[0].is_pinned()
    assert isinstance(b['pair'], P) and b['n'].tolist() == [1, 1]


# ---- checkpoints between devices -----------------------------------------------------------------
def _saved(obj):
    buf = io.BytesIO()
    nbtorch.save(obj, buf)
    return buf.getvalue()


def _load(data, *args, **kw): return nbtorch.load(io.BytesIO(data), *args, **kw)


def _where(sd): return {k: str(v.device) for k, v in sd.items() if isinstance(v, nbtorch.Tensor)}


MAP_LOCATIONS = [  # (map_location, where the GPU tensor lands, where the CPU tensor lands)
    (None, 'cuda:0', 'cpu'), ('cpu', 'cpu', 'cpu'), ('cuda', 'cuda:0', 'cuda:0'),
    ('cuda:0', 'cuda:0', 'cuda:0'), (b'cpu', 'cpu', 'cpu'),
    (nbtorch.device('cpu'), 'cpu', 'cpu'), (nbtorch.device('cuda', 0), 'cuda:0', 'cuda:0'),
    ({'cuda:0': 'cpu'}, 'cpu', 'cpu'), ({'cpu': 'cuda:0'}, 'cuda:0', 'cuda:0'),
    (lambda s, loc: s, 'cpu', 'cpu'),  # the storage as read: on the CPU
    (lambda s, loc: s.cuda(), 'cuda:0', 'cuda:0'), (lambda s, loc: None, 'cuda:0', 'cpu')]


@pytest.mark.parametrize('ml,gpu_to,cpu_to', MAP_LOCATIONS, ids=range(len(MAP_LOCATIONS)))
def test_every_map_location_both_ways(any_gpu, ml, gpu_to, cpu_to):
    w, c = nbtorch.randn(3, 4, device='cuda'), nbtorch.arange(5)
    data = _saved({'w': w, 'view': w[1], 'c': c, 'n': 3})  # the view is saved with w's storage
    sd = _load(data, map_location=ml)
    assert _where(sd) == {'w': gpu_to, 'view': gpu_to, 'c': cpu_to} and sd['n'] == 3
    assert sd['w'].tolist() == w.tolist() and sd['view'].tolist() == w[1].tolist()
    assert sd['c'].tolist() == c.tolist() and sd['c'].dtype is nbtorch.int64


def test_weights_only_is_the_default(any_gpu):
    "PyTorch 2.6's default: tensors, containers, numbers load; others need weights_only=False."
    data = _saved({'w': nbtorch.ones(2, device='cuda'), 'fn': io.BytesIO})
    with pytest.raises(pickle.UnpicklingError, match='weights_only'): _load(data)
    assert _where(_load(data, weights_only=False, map_location='cpu')) == {'w': 'cpu'}


def test_a_gpu_checkpoint_on_a_cpu_only_machine(any_gpu):
    "PyTorch's advice when the GPU a checkpoint names is not there: map_location."
    data = _saved({'w': nbtorch.ones(2, device='cuda')})
    with pytest.raises(RuntimeError, match="CUDA device 1 but torch.cuda.device_count.. is 1"):
        _load(data, map_location='cuda:1')
    cuda._set_backend(None, None)  # the fixture restores the stand-in
    with pytest.raises(RuntimeError, match=r"map_location=torch.device\('cpu'\) to map your"):
        _load(data)
    assert _where(_load(data, map_location='cpu')) == {'w': 'cpu'}
    assert _load(data, map_location=nbtorch.device('cpu'))['w'].tolist() == [1., 1.]


# ---- random numbers on the device ----------------------------------------------------------------
MAKERS = [lambda d: nbtorch.randn(4, 3, device=d), lambda d: nbtorch.rand(5, device=d),
          lambda d: nbtorch.randint(0, 10, (6,), device=d), lambda d: nbtorch.randperm(7, device=d),
          lambda d: nbtorch.randn(3, dtype=nbtorch.float64, device=d),
          lambda d: nbtorch.randn(3, dtype=nbtorch.complex64, device=d),
          lambda d: nbtorch.empty(4, device=d).normal_(),
          lambda d: nbtorch.empty(4, device=d).uniform_(-1, 1),
          lambda d: nbtorch.empty(4, dtype=nbtorch.int32, device=d).random_(),
          lambda d: nbtorch.empty(4, device=d).bernoulli_(0.5),
          lambda d: nbtorch.zeros(4, device=d).bernoulli(),
          lambda d: nbtorch.normal(nbtorch.zeros(3, device=d), 1.),
          lambda d: nbtorch.randn_like(nbtorch.zeros(2, 2, device=d))]


def _cpu_state():
    "The state of the CPU's generator (nbtorch.tensor._rng)."
    return sys.modules['nbtorch.tensor']._rng[0].bit_generator.state


def test_random_numbers_are_drawn_on_the_device(any_gpu):
    "Drawn by the GPU's own generator, as PyTorch's: a seed repeats them, the CPU's stream is untouched."
    for make in MAKERS:
        nbtorch.manual_seed(7); a = make('cuda')
        nbtorch.manual_seed(7); c = make('cpu')
        with _reads() as t:
            nbtorch.manual_seed(7); state = _cpu_state(); b = make('cuda')
        assert _on_device(a) and a.is_cuda and a.dtype == c.dtype and a.shape == c.shape
        assert a.tolist() == b.tolist()
        assert _cpu_state() == state  # before, every GPU draw came from the CPU's generator
        assert t.count in (None, 0) and getattr(t, 'uploads', 0) == 0, t  # made there, not copied up
    nbtorch.manual_seed(7); x, y = nbtorch.randn(3, device='cuda'), nbtorch.randn(3, device='cuda')
    assert x.tolist() != y.tolist()  # the stream moves on


def test_seeding_the_gpu_leaves_the_cpu_alone(any_gpu):
    "`torch.cuda.manual_seed` seeds the GPU's generator alone; `torch.manual_seed` seeds both."
    nbtorch.manual_seed(1); a = nbtorch.rand(3)
    nbtorch.manual_seed(1); cuda.manual_seed(5); b = nbtorch.rand(3)
    assert a.tolist() == b.tolist()
    cuda.manual_seed(5); g = nbtorch.rand(3, device='cuda')
    nbtorch.rand(3)  # the CPU's stream moving on changes nothing on the GPU
    cuda.manual_seed(5); h = nbtorch.rand(3, device='cuda')
    assert g.tolist() == h.tolist()


SAMPLERS = {  # name: (draw 20,000 on device d, the mean, the standard deviation of one sample)
    'rand': (lambda d: nbtorch.rand(20000, device=d), .5, (1 / 12) ** .5),
    'randn': (lambda d: nbtorch.randn(20000, device=d), 0., 1.),
    'randn(float64)': (lambda d: nbtorch.randn(20000, dtype=nbtorch.float64, device=d), 0., 1.),
    'randint': (lambda d: nbtorch.randint(3, 9, (20000,), device=d), 5.5, (35 / 12) ** .5),
    'normal_(2, 3)': (lambda d: nbtorch.empty(20000, device=d).normal_(2, 3), 2., 3.),
    'uniform_(-1, 3)': (lambda d: nbtorch.empty(20000, device=d).uniform_(-1, 3), 1., (16 / 12) ** .5),
    'exponential_(4)': (lambda d: nbtorch.empty(20000, device=d).exponential_(4), .25, .25),
    'geometric_(0.25)': (lambda d: nbtorch.empty(20000, device=d).geometric_(.25), 4., 12 ** .5),
    'log_normal_(0, 0.5)': (lambda d: nbtorch.empty(20000, device=d).log_normal_(0, .5),
                            np.exp(.125), ((np.exp(.25) - 1) * np.exp(.25)) ** .5),
    'bernoulli_(0.3)': (lambda d: nbtorch.empty(20000, device=d).bernoulli_(.3), .3, .21 ** .5),
    'random_(0, 4)': (lambda d: nbtorch.empty(20000, device=d).random_(0, 4), 1.5, 1.25 ** .5),
    'normal(mean, 2)': (lambda d: nbtorch.normal(nbtorch.ones(20000, device=d), 2.), 1., 2.),
}


@pytest.mark.parametrize('name', SAMPLERS)
def test_samples_drawn_on_the_device_follow_their_distribution(any_gpu, name):
    "Each sampler's parameters reach the GPU's generator as meant: the mean within 5 standard errors."
    make, mean, std = SAMPLERS[name]
    nbtorch.manual_seed(0)
    x = make('cuda')
    assert _on_device(x) and x.dtype == make('cpu').dtype
    m = x.double().mean().item()
    assert abs(m - mean) < 5 * std / 20000 ** .5, (name, m, mean)
    v = x.double().std().item()
    assert abs(v - std) < .05 * std, (name, v, std)


def test_integers_stay_in_their_bounds_on_the_device(any_gpu):
    nbtorch.manual_seed(0)
    r = nbtorch.randint(-2, 1, (5000,), device='cuda')
    assert set(r.unique().tolist()) == {-2, -1, 0}
    assert sorted(nbtorch.randperm(50, device='cuda').tolist()) == list(range(50))
    u = nbtorch.empty(5000, dtype=nbtorch.uint8, device='cuda').random_()
    assert u.min().item() == 0 and u.max().item() == 255
    f = nbtorch.empty(5000, dtype=nbtorch.float16, device='cuda').uniform_()
    assert f.dtype == nbtorch.float16 and 0 <= f.min().item() and f.max().item() <= 1
    c = nbtorch.empty(5000, device='cuda').cauchy_()
    assert abs(c.median().item()) < .1  # the median of Cauchy(0, 1): its mean does not exist


def test_dropout_masks_on_the_device(any_gpu):
    x = nbtorch.ones(1000, device='cuda')
    nbtorch.manual_seed(1); a = F.dropout(x, 0.3)
    nbtorch.manual_seed(1); state = _cpu_state()
    with _reads() as t: b = F.dropout(x, 0.3)
    assert _on_device(a) and a.tolist() == b.tolist() and _cpu_state() == state
    assert getattr(t, 'uploads', 0) == 0, t  # a mask drawn on the host was copied up at every call
    kept = (a != 0).float().mean().item()
    scale = float(np.float32(1) / np.float32(0.7))  # 1 / (1 - p) in float32
    assert 0.6 < kept < 0.8 and set(a.unique().tolist()) == {0., scale}
    drop = nbtorch.nn.Dropout2d(0.5).cuda()
    nbtorch.manual_seed(2)
    with _reads() as t: y = drop(nbtorch.ones(4, 6, 3, 3, device='cuda'))
    assert t.count in (None, 0) and _on_device(y)
    assert all(len(set(ch.reshape(-1).tolist())) == 1 for n in y for ch in n)  # whole channels


# ---- dtype defaults ------------------------------------------------------------------------------
CREATORS = {
    'arange(int)': lambda m, d: m.arange(5, device=d),
    'arange(float)': lambda m, d: m.arange(5., device=d),
    'arange(int, float step)': lambda m, d: m.arange(0, 2, 0.5, device=d),
    'full(int)': lambda m, d: m.full((2,), 3, device=d),
    'full(float)': lambda m, d: m.full((2,), 3., device=d),
    'full(bool)': lambda m, d: m.full((2,), True, device=d),
    'tensor(ints)': lambda m, d: m.tensor([1, 2], device=d),
    'tensor(floats)': lambda m, d: m.tensor([1., 2], device=d),
    'tensor(bool)': lambda m, d: m.tensor(True, device=d),
    'tensor(mixed)': lambda m, d: m.tensor([1, 2.5, True], device=d),
    'tensor(complex)': lambda m, d: m.tensor([1j], device=d),
    'zeros': lambda m, d: m.zeros(2, device=d),
    'linspace': lambda m, d: m.linspace(0, 1, 3, device=d),
    'eye': lambda m, d: m.eye(2, device=d),
    'sum(bool)': lambda m, d: m.ones(3, dtype=m.bool, device=d).sum(),
    'sum(int8)': lambda m, d: m.ones(3, dtype=m.int8, device=d).sum(),
    'sum(uint8)': lambda m, d: m.ones(3, dtype=m.uint8, device=d).sum(),
    'prod(int32)': lambda m, d: m.ones(3, dtype=m.int32, device=d).prod(),
    'cumsum(int16)': lambda m, d: m.ones(3, dtype=m.int16, device=d).cumsum(0),
    'mean(float16)': lambda m, d: m.ones(3, dtype=m.float16, device=d).mean(),
    'int / int': lambda m, d: m.arange(4, device=d) / 2,
    'int * float': lambda m, d: m.arange(4, device=d) * 1.5,
    'int8 + int': lambda m, d: m.ones(2, dtype=m.int8, device=d) + 3,
    'float16 + float': lambda m, d: m.ones(2, dtype=m.float16, device=d) + 1e-3,
    'argmax': lambda m, d: m.arange(4., device=d).argmax(),
    'randint': lambda m, d: m.randint(0, 3, (2,), device=d),
}


@needs_torch
@pytest.mark.parametrize('name', CREATORS)
def test_dtype_defaults_are_pytorchs_on_both_devices(any_gpu, name):
    make = CREATORS[name]
    cpu, dev, ref = make(nbtorch, 'cpu'), make(nbtorch, 'cuda'), make(torch, 'cpu')
    assert _on_device(dev) and dev.dtype == cpu.dtype and str(cpu.dtype) == str(ref.dtype), name
    assert dev.shape == cpu.shape == tuple(ref.shape)
    if name != 'randint': np.testing.assert_array_equal(dev.cpu().numpy(), ref.numpy())


@pytest.mark.parametrize('dt', ['int64', 'int32', 'bool', 'uint8'])
def test_the_mean_of_integers_refuses_on_both_devices(any_gpu, dt):
    for d in ['cpu', 'cuda']:
        x = nbtorch.ones(3, dtype=getattr(nbtorch, dt), device=d)
        with pytest.raises(RuntimeError, match=r'mean\(\): could not infer output dtype'): x.mean()


# ---- accumulating scatters -----------------------------------------------------------------------
# On a GPU these add with `cupyx.scatter_add`, CUDA's atomicAdd: repeated indices must all count (a
# plain `a[idx] += v` keeps one of them), and atomicAdd exists for some dtypes only
SCATTERS = {
    'scatter_add': lambda m, a, i, v: a.scatter_add(0, i, v),
    'scatter_reduce sum': lambda m, a, i, v: a.scatter_reduce(0, i, v, 'sum'),
    'scatter_reduce mean': lambda m, a, i, v: a.scatter_reduce(0, i, v, 'mean', include_self=False),
    'index_add': lambda m, a, i, v: a.index_add(0, i, v),
    'index_add alpha': lambda m, a, i, v: a.index_add(0, i, v, alpha=2),
    'index_put accumulate': lambda m, a, i, v: a.index_put((i,), v, accumulate=True),
    'index_put_ accumulate': lambda m, a, i, v: a.clone().index_put_((i,), v, accumulate=True),
    'put accumulate': lambda m, a, i, v: a.put(i, v, accumulate=True),
    'index_put (no accumulate)': lambda m, a, i, v: a.index_put((i,), v)}
DTYPES = ['float32', 'float64', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'complex64']


@needs_torch
@pytest.mark.parametrize('dt', DTYPES)
@pytest.mark.parametrize('op', SCATTERS)
def test_scatters_add_every_repeated_index_on_the_device(any_gpu, op, dt):
    if op == 'scatter_reduce mean' and dt.startswith(('int', 'uint')): pytest.skip('PyTorch floors')
    if op == 'index_put (no accumulate)' and dt != 'float32': pytest.skip('one dtype shows it')
    idx = [0, 2, 0, 1, 0, 2]
    a0, v0 = np.arange(4).astype(dt), (np.arange(6) + 1).astype(dt)
    if op == 'index_put (no accumulate)': v0 = np.full(6, 5, dt)  # which write wins is undefined
    ref = SCATTERS[op](torch, torch.tensor(a0), torch.tensor(idx), torch.tensor(v0))
    for d in ['cpu', 'cuda']:
        t = lambda x, dtype=None: nbtorch.tensor(x, dtype=dtype, device=d)
        with _reads() as reads:
            out = SCATTERS[op](nbtorch, t(a0), t(idx, nbtorch.int64), t(v0))
        # nothing: the index range is checked on the device and read at the next read (out.cpu()
        # below), as PyTorch's CUDA kernels assert
        assert reads.count in (None, 0), reads
        assert out.is_cuda == (d == 'cuda') and str(out.dtype) == str(ref.dtype), (d, out.dtype)
        np.testing.assert_array_equal(out.cpu().numpy(), ref.numpy())


def test_gradients_that_scatter_add_on_the_device(any_gpu):
    "Indexing with repeated indices and embeddings sum their gradients with scatter_add."
    idx = [1, 1, 3, 1]
    for d in ['cpu', 'cuda']:
        w = nbtorch.arange(10., device=d).reshape(5, 2).requires_grad_()
        i = nbtorch.tensor(idx, device=d)
        rows = w.gather(0, i[:, None].expand(4, 2))
        (w[i].sum() + F.embedding(i, w).pow(2).sum() + rows.sum()).backward()
        expected = np.zeros((5, 2), np.float32)
        np.add.at(expected, idx, 2 + 2 * np.arange(10.).reshape(5, 2)[idx])
        np.testing.assert_array_equal(w.grad.cpu().numpy(), expected)
        assert w.grad.is_cuda == (d == 'cuda')


def test_index_checks_on_the_device_are_reported_at_the_next_read(any_gpu):
    "gather, take, index_select and embedding check their indices on the GPU without waiting for it."
    w = nbtorch.arange(10., device='cuda').reshape(5, 2)
    bad = nbtorch.tensor([0, 5], device='cuda')
    for f, msg in [(lambda: w.gather(0, bad[:, None].expand(2, 2)), 'out of bounds for dimension 0 with size 5'),
                   (lambda: w.take(nbtorch.tensor([10], device='cuda')), 'an index is below -10, or 10 or more'),
                   (lambda: w.index_select(0, bad), 'an index is below 0, or 5 or more'),
                   (lambda: F.embedding(nbtorch.tensor([-1], device='cuda'), w), 'embedding: index out of range')]:
        with _reads() as reads: f()
        assert reads.count in (None, 0), reads
        with pytest.raises(RuntimeError, match='device-side assert triggered: .*' + re.escape(msg)):
            w.sum().item()
    assert w.sum().item() == 45.  # reported once


def test_embedding_refuses_a_negative_index_as_pytorch():
    "NumPy counts -1 from the end: the embedding returned the last row where PyTorch raises."
    w = nbtorch.randn(4, 2)
    for i in ([-1], [4]):
        with pytest.raises(IndexError, match='index out of range in self'):
            F.embedding(nbtorch.tensor(i), w)


def test_no_branch_on_numpys_array_type_where_data_may_be_on_a_gpu():
    """The stand-in's arrays are a NumPy subclass and CuPy's are not: a branch on
    `isinstance(x, np.ndarray)` goes one way on the stand-in and the other on a GPU, so no test here
    sees the GPU's way (a view of a GPU tensor was a silent copy so). Only these files may, where the
    data is the host's by construction."""
    import pathlib, re as _re
    allowed = {'compiler.py': "records NumPy calls on the CPU (CuPy runs eagerly)",
               'tensor.py': "from_numpy takes NumPy arrays only, as PyTorch's",
               'distributed/__init__.py': "MPI's zero-copy buffer for a host array, else a host copy",
               'utils/data.py': "collating NumPy samples"}
    root = pathlib.Path(nbtorch.__file__).parent
    found = {str(p.relative_to(root)) for p in root.rglob('*.py')
             if _re.search(r'isinstance\([^()]*np\.ndarray\)', p.read_text())}
    assert found <= set(allowed), found - set(allowed)
